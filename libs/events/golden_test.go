package events_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// createGoldens writes the golden files that do not exist yet. It never
// overwrites one: a shipped golden file is never edited.
var createGoldens = flag.Bool("create-goldens", false, "write missing testdata/<type>.v<N>.json files")

var goldenName = regexp.MustCompile(`^([a-z][a-z0-9_.]*)\.v([0-9]+)\.json$`)

// golden is one golden file, parsed.
type golden struct {
	path   string
	typ    string
	schema int
	body   []byte
	env    events.Envelope
}

// mustGoldens reads and parses every golden file of testdata.
func mustGoldens(tb testing.TB) []golden {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.v*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []golden
	for _, p := range paths {
		m := goldenName.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			tb.Fatalf("%s: name is not <type>.v<N>.json", p)
		}
		schema, _ := strconv.Atoi(m[2])
		body, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		env, err := events.ParseEnvelope(body)
		if err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		out = append(out, golden{path: p, typ: m[1], schema: schema, body: body, env: env})
	}
	return out
}

func TestGoldens_EveryTypeAndVersion(t *testing.T) {
	if *createGoldens {
		writeMissingGoldens(t) // before the parallel tests read testdata
	} else {
		t.Parallel()
	}
	have := map[string]bool{}
	for _, g := range mustGoldens(t) {
		have[filepath.Base(g.path)] = true
	}
	for _, typ := range events.Types() {
		for v := 1; v <= events.CurrentSchema(typ); v++ {
			if name := fmt.Sprintf("%s.v%d.json", typ, v); !have[name] {
				t.Errorf("no golden file testdata/%s (run go test -run TestGoldens -create-goldens)", name)
			}
		}
	}
}

func TestGoldens_Decode(t *testing.T) {
	t.Parallel()
	for _, g := range mustGoldens(t) {
		t.Run(filepath.Base(g.path), func(t *testing.T) {
			t.Parallel()
			env := g.env
			if env.Type != g.typ || env.Schema != g.schema {
				t.Fatalf("file holds %s schema %d", env.Type, env.Schema)
			}
			if err := env.VerifyHash(); err != nil {
				t.Fatalf("stored hash: %v", err)
			}
			payload, err := events.Decode(env)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			spec, _ := events.Lookup(env.Type)
			if got := reflect.TypeOf(payload); got != spec.Payload {
				t.Fatalf("Decode returned %v, want %v", got, spec.Payload)
			}
			if env.Schema == spec.Schema {
				// Every field of the golden survives the payload struct: a
				// renamed json tag would silently drop it.
				want := mustCanonical(t, env.Data)
				if got := mustCanonical(t, payload); !bytes.Equal(got, want) {
					t.Errorf("payload round trip\n got %s\nwant %s", got, want)
				}
			}

			// Re-encoded canonically, the event parses again to the same hash.
			canon := mustCanonical(t, env)
			again, err := events.ParseEnvelope(canon)
			if err != nil {
				t.Fatalf("ParseEnvelope(canonical): %v", err)
			}
			if err := again.VerifyHash(); err != nil {
				t.Fatalf("canonical form: %v", err)
			}
			if h, _ := again.ComputeHash(); h != env.Hash {
				t.Fatalf("canonical form hashes to %s, stored %s", h, env.Hash)
			}
		})
	}
}

// TestGoldens_Chains checks that the version 1 goldens of each aggregate
// form one valid history.
func TestGoldens_Chains(t *testing.T) {
	t.Parallel()
	chains := map[string][]events.Envelope{}
	for _, g := range mustGoldens(t) {
		if g.schema == 1 {
			k := g.env.Tenant + "/" + g.env.Aggregate + "/" + g.env.AggregateID
			chains[k] = append(chains[k], g.env)
		}
	}
	for k, envs := range chains {
		slices.SortFunc(envs, func(a, b events.Envelope) int { return int(a.Version) - int(b.Version) })
		if envs[0].Version != 1 {
			// A history whose first events have goldens of a later schema
			// only (the erased user's user.erased follows a schema 2
			// registration): its chain cannot be checked from schema 1.
			continue
		}
		if err := events.VerifyChain(envs); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

func TestSealedCredential_NoPlaintext(t *testing.T) {
	t.Parallel()
	const password = "hunter2-password"
	ring := mustKeyring(t, "kek-1")
	userID := events.NewID()
	cred, err := ring.Seal([]byte(password), []byte("acme/"+userID))
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: cred,
	}, events.Meta{
		Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: userID,
		OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Chain("", 1, &env); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{
		password,
		base64.StdEncoding.EncodeToString([]byte(password)),
		base64.RawStdEncoding.EncodeToString([]byte(password)),
		hex.EncodeToString([]byte(password)),
	} {
		if bytes.Contains(body, []byte(form)) {
			t.Errorf("event body contains the password as %q", form)
		}
	}
	// And the sealed value still opens, bound to its context.
	back, err := events.ParseEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	p, err := events.Decode(back)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.Open(p.(events.UserRegistered).Credential, []byte("acme/"+userID))
	if err != nil || string(got) != password {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

// writeMissingGoldens builds a realistic history of every aggregate and
// writes each event whose golden file is missing.
func writeMissingGoldens(t *testing.T) {
	t.Helper()
	base := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	n := 0
	id := func() string { // fixed UUIDv7 values, one per call
		n++
		ms := base.Add(time.Duration(n) * time.Minute).UnixMilli()
		var u [16]byte
		binary.BigEndian.PutUint64(u[:8], uint64(ms)<<16|0x7000|uint64(n))
		sum := sha256.Sum256([]byte(fmt.Sprint("golden id ", n)))
		copy(u[8:], sum[:8])
		u[8] = 0x80 | u[8]&0x3F
		h := hex.EncodeToString(u[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	fake := func(label string, size int) []byte { // deterministic stand-ins for ciphertext
		var out []byte
		for i := 0; len(out) < size; i++ {
			sum := sha256.Sum256([]byte(fmt.Sprint(label, i)))
			out = append(out, sum[:]...)
		}
		return out[:size]
	}
	hashHex := func(label string) string { sum := sha256.Sum256([]byte(label)); return hex.EncodeToString(sum[:]) }
	sealed := func(label string) events.Sealed {
		// 60 bytes of bcrypt hash plus the 16-byte GCM tag.
		return events.Sealed{KID: "kek-2025-03", Nonce: fake(label+" nonce", 12), Ciphertext: fake(label+" ciphertext", 76)}
	}

	personal := func(label string, size int) events.Personal {
		// The value's bytes plus the 16-byte GCM tag, under the user's
		// data key.
		return events.Personal{Nonce: fake(label+" nonce", 12), Ciphertext: fake(label+" ciphertext", size+16)}
	}

	sealedSeed := func(label string) events.Sealed {
		// 20 bytes of seed plus the 16-byte GCM tag.
		return events.Sealed{KID: "kek-2025-03", Nonce: fake(label+" nonce", 12), Ciphertext: fake(label+" ciphertext", 36)}
	}

	const tenant = "acme"
	admin := events.Actor{Tenant: "platform", Sub: id()}
	userID, sessionID := id(), id()
	tenantAdmin := events.Actor{Tenant: tenant, Sub: id()}
	self := events.Actor{Tenant: tenant, Sub: userID}
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	// Times in payloads lie after the event that carries them: each
	// history's events are 17 minutes and a bit apart.
	type step struct {
		typ   string
		actor events.Actor
		data  any // or func(at time.Time) any, for payloads holding times after the event's
	}
	histories := []struct {
		aggregate, id string
		steps         []step
	}{
		{events.AggregateTenant, tenant, []step{
			{events.TypeTenantCreated, admin, events.TenantCreated{Name: "Acme Corporation"}},
			{events.TypeTenantDisabled, admin, events.TenantDisabled{Reason: "unpaid invoice 2025-0042"}},
			{events.TypeTenantEnabled, admin, events.TenantEnabled{}},
		}},
		{events.AggregateUser, userID, []step{
			{events.TypeUserRegistered, tenantAdmin, events.UserRegistered{
				Username: personal("username", len("Alice.Martin")), UsernameKey: personal("username_key", len("alice.martin")),
				UsernameClaim: hashHex("username claim"), Credential: sealed("registered")}},
			{events.TypeUserPasswordChanged, tenantAdmin, events.UserPasswordChanged{Credential: sealed("changed"), Reset: true}},
			{events.TypeUserDisabled, tenantAdmin, events.UserDisabled{Reason: "left the company"}},
			{events.TypeUserEnabled, tenantAdmin, events.UserEnabled{}},
			{events.TypeUserRoleAssigned, tenantAdmin, events.UserRoleAssigned{Role: "billing-admin"}},
			{events.TypeUserRoleUnassigned, tenantAdmin, events.UserRoleUnassigned{Role: "billing-admin"}},
			{events.TypeUserDeleted, tenantAdmin, events.UserDeleted{UsernameClaim: hashHex("username claim")}},
		}},
		{events.AggregateRole, "billing-admin", []step{
			{events.TypeRoleDefined, tenantAdmin, events.RoleDefined{
				Permissions: []string{"invoices:*", "users:read"}, Description: "Approves & <pays> invoices"}},
			{events.TypeRoleDeleted, tenantAdmin, events.RoleDeleted{}},
		}},
		{events.AggregateKeySet, tenant, []step{
			{events.TypeKeyCreated, events.System, func(at time.Time) any {
				return events.KeyCreated{
					KID: "acme-2025-03-14", Algorithm: "EdDSA",
					PublicJWK:  events.RawJSON(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"acme-2025-03-14","alg":"EdDSA","use":"sig"}`),
					ActiveFrom: at.Add(10 * time.Minute)}
			}},
			{events.TypeKeyRetired, events.System, func(at time.Time) any {
				return events.KeyRetired{KID: "acme-2025-03-14", RemoveAt: at.Add(15 * time.Minute)}
			}},
		}},
		{events.AggregateSignin, userID, []step{
			{events.TypeSigninFailed, self, events.SigninFailed{Reason: "wrong_password", Failures: 5, Client: "203.0.113.7"}},
			{events.TypeSigninLocked, events.System, func(at time.Time) any {
				return events.SigninLocked{Until: at.Add(15 * time.Minute), Failures: 5}
			}},
			{events.TypeSigninSucceeded, self, events.SigninSucceeded{SessionID: sessionID, Client: "203.0.113.7"}},
		}},
		{events.AggregateSession, sessionID, []step{
			{events.TypeSessionStarted, self, func(at time.Time) any {
				return events.SessionStarted{UserID: userID, TokenHash: hashHex("refresh token 1"), ExpiresAt: at.Add(30 * 24 * time.Hour)}
			}},
			{events.TypeSessionRefreshed, self, func(at time.Time) any {
				return events.SessionRefreshed{PrevHash: hashHex("refresh token 1"), TokenHash: hashHex("refresh token 2"), ExpiresAt: at.Add(30 * 24 * time.Hour)}
			}},
			{events.TypeSessionRevoked, self, events.SessionRevoked{Reason: "logout"}},
		}},
		// Types added later go below, as histories of their own that
		// continue their aggregate's: what comes before must stay as it
		// is, since the events it builds are the shipped goldens that the
		// new ones chain to.
		{events.AggregateTenant, tenant, []step{
			{events.TypeTenantSettingsChanged, tenantAdmin, events.TenantSettingsChanged{Settings: events.TenantSettings{
				DisplayName:   "Acme Corporation",
				PasswordGrant: new(false),
				RateLimits:    &events.TenantRateLimits{AccountAttemptsPerMinute: 10, AddressAttemptsPerMinute: 600},
			}}},
		}},
		// The client's id is derived, not drawn from id(): a call of id()
		// before the loop would change every event id after it.
		{events.AggregateClient, events.DeriveID("golden", "client"), []step{
			{events.TypeClientRegistered, tenantAdmin, events.ClientRegistered{
				Config: events.ClientConfig{
					Name: "Acme Billing", Type: events.ClientConfidential,
					RedirectURIs:             []string{"https://billing.acme.example/callback"},
					PostLogoutRedirectURIs:   []string{"https://billing.acme.example/"},
					GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
					Scopes:                   []string{"openid", "profile", "email", "offline_access"},
					IDTokenSignedResponseAlg: "RS256",
				},
				SecretHash: hashHex("client secret 1"),
			}},
			{events.TypeClientUpdated, tenantAdmin, events.ClientUpdated{Config: events.ClientConfig{
				Name: "Acme Billing & Invoices", Type: events.ClientConfidential,
				RedirectURIs:             []string{"https://billing.acme.example/callback", "http://127.0.0.1:8400/callback"},
				PostLogoutRedirectURIs:   []string{},
				GrantTypes:               []string{"authorization_code", "client_credentials"},
				Scopes:                   []string{"openid", "email"},
				IDTokenSignedResponseAlg: "ES256",
			}}},
			{events.TypeClientSecretRotated, tenantAdmin, func(at time.Time) any {
				return events.ClientSecretRotated{
					SecretHash: hashHex("client secret 2"), PreviousSecretHash: hashHex("client secret 1"),
					PreviousSecretExpiresAt: at.Add(24 * time.Hour),
				}
			}},
			{events.TypeClientRoleAssigned, tenantAdmin, events.ClientRoleAssigned{Role: "invoices-bot"}},
			{events.TypeClientRoleUnassigned, tenantAdmin, events.ClientRoleUnassigned{Role: "invoices-bot"}},
			{events.TypeClientDeleted, tenantAdmin, events.ClientDeleted{}},
		}},
		// An authorization code of the hosted login page: issued after a
		// sign-in in the browser session below, redeemed once, replayed.
		// Aggregate ids are hashes of secrets, fixed here rather than drawn
		// from id(), so that the ids above stay as they were.
		{events.AggregateBrowser, hashHex("browser cookie 1"), []step{
			{events.TypeBrowserStarted, self, func(at time.Time) any {
				return events.BrowserStarted{UserID: userID, AuthTime: at, AMR: []string{"pwd"}, Client: "203.0.113.7"}
			}},
			{events.TypeBrowserEnded, self, events.BrowserEnded{Reason: "logout"}},
		}},
		{events.AggregateAuthCode, hashHex("authorization code 1"), []step{
			{events.TypeAuthCodeIssued, self, func(at time.Time) any {
				return events.AuthCodeIssued{
					ClientID: "0195a0c4-6f1e-7c3a-9b2d-4e5f6a7b8c9d", UserID: userID,
					RedirectURI:   "https://app.example.com/callback",
					CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256",
					Nonce: "n-0S6_WzA2Mj", Scopes: []string{"openid", "profile", "offline_access"},
					BrowserSession: hashHex("browser cookie 1"), AuthTime: at.Add(-time.Minute),
					AMR: []string{"pwd"}, ACR: "urn:authstream:acr:password", ExpiresAt: at.Add(time.Minute),
				}
			}},
			{events.TypeAuthCodeRedeemed, self, events.AuthCodeRedeemed{SessionID: "0195a0c5-1a2b-7c3d-8e4f-5a6b7c8d9e0f"}},
			{events.TypeAuthCodeReplayed, events.System, events.AuthCodeReplayed{
				ClientID: "0195a0c4-6f1e-7c3a-9b2d-4e5f6a7b8c9d", SessionID: "0195a0c5-1a2b-7c3d-8e4f-5a6b7c8d9e0f"}},
		}},
		// The audit key of the tenant's verifiable log, created and
		// retired by a rotation.
		{events.AggregateKeySet, tenant, []step{
			{events.TypeAuditKeyCreated, events.System, func(at time.Time) any {
				pub, _ := base64.StdEncoding.DecodeString("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
				return events.AuditKeyCreated{KID: "3c6f0e3d2a1b9c8d", PublicKey: pub, ActiveFrom: at}
			}},
			{events.TypeAuditKeyRetired, tenantAdmin, func(at time.Time) any {
				return events.AuditKeyRetired{KID: "3c6f0e3d2a1b9c8d", RetiredAt: at}
			}},
		}},
		// A user imported with an argon2id hash, rehashed to bcrypt at
		// their first login; the id is derived so the ids above stay.
		{events.AggregateUser, events.DeriveID("golden", "imported user"), []step{
			{events.TypeUserPasswordRehashed, events.Actor{Tenant: tenant, Sub: events.DeriveID("golden", "imported user")}, events.UserPasswordRehashed{Credential: sealed("rehashed")}},
		}},
		// A webhook endpoint: registered, updated, its secret rotated,
		// paused, resumed and deleted. Its id is derived, as the client's.
		{events.AggregateWebhook, events.DeriveID("golden", "webhook"), []step{
			{events.TypeWebhookRegistered, tenantAdmin, events.WebhookRegistered{
				Config: events.WebhookConfig{
					URL:         "https://hooks.acme.example/authstream",
					EventTypes:  []string{"user.registered", "user.role_assigned"},
					Description: "CRM sync",
				},
				// 32 secret bytes and the 16-byte GCM tag.
				Secret: events.Sealed{KID: "kek-2025-03", Nonce: fake("webhook secret 1 nonce", 12), Ciphertext: fake("webhook secret 1", 48)},
			}},
			{events.TypeWebhookUpdated, tenantAdmin, events.WebhookUpdated{Config: events.WebhookConfig{
				URL:        "https://hooks.acme.example/authstream/v2",
				EventTypes: []string{"role.*", "user.*"},
			}}},
			{events.TypeWebhookSecretRotated, tenantAdmin, func(at time.Time) any {
				return events.WebhookSecretRotated{
					Secret:                  events.Sealed{KID: "kek-2025-03", Nonce: fake("webhook secret 2 nonce", 12), Ciphertext: fake("webhook secret 2", 48)},
					PreviousSecretExpiresAt: at.Add(24 * time.Hour),
				}
			}},
			{events.TypeWebhookPaused, tenantAdmin, events.WebhookPaused{}},
			{events.TypeWebhookResumed, tenantAdmin, events.WebhookResumed{}},
			{events.TypeWebhookReplayed, tenantAdmin, events.WebhookReplayRequested{FromSequence: 4711}},
			{events.TypeWebhookDeleted, tenantAdmin, events.WebhookDeleted{}},
		}},
		// A user's second factors: a TOTP enrolment started, confirmed,
		// and an administrator's reset. The user
		// id is derived so that the ids above stay as they were.
		{events.AggregateUser, events.DeriveID("golden", "mfa user"), []step{
			{events.TypeUserMFAEnrolmentStarted, self, events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: sealedSeed("totp pending")}},
			{events.TypeUserMFAEnrolled, self, func(at time.Time) any {
				seed := sealedSeed("totp pending")
				return events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &seed, ConfirmedStep: at.Unix() / 30}
			}},
			{events.TypeUserMFARemoved, tenantAdmin, events.UserMFARemoved{Factor: events.FactorTOTP, Reset: true}},
		}},
		// A person registered and then erased: the user.erased event; the
		// user id is derived so that the ids above stay as they were.
		{events.AggregateUser, events.DeriveID("golden", "erased user"), []step{
			{events.TypeUserRegistered, tenantAdmin, events.UserRegistered{
				Username: personal("erased username", len("Bob.Stone")), UsernameKey: personal("erased username_key", len("bob.stone")),
				UsernameClaim: hashHex("erased username claim"), Credential: sealed("erased registered")}},
			{events.TypeUserErased, tenantAdmin, events.UserErased{UsernameClaim: hashHex("erased username claim")}},
		}},
		// A user's profile: changed by an administrator (a new e-mail
		// address, the locale removed), then the address verified. The
		// user id is derived so that the ids above stay as they were.
		{events.AggregateUser, events.DeriveID("golden", "profile user"), []step{
			{events.TypeUserProfileUpdated, tenantAdmin, events.UserProfileUpdated{
				Email:      personal("profile email", len("Alice.Martin@acme.example")),
				Name:       personal("profile name", len("Alice Martin")),
				Attributes: personal("profile attributes", len(`{"department":"Finance","employee_number":4711}`)),
				Removed:    []string{events.ProfileLocale},
			}},
			{events.TypeUserEmailVerified, events.Actor{Tenant: tenant, Sub: events.DeriveID("golden", "profile user")},
				events.UserEmailVerified{Email: personal("verified email", len("Alice.Martin@acme.example"))}},
		}},
		// A password reset link: mailed, then used once. The aggregate id
		// is fixed, as the authorization code's.
		{events.AggregateEmailLink, hashHex("email link token 1"), []step{
			{events.TypeEmailLinkIssued, events.System, func(at time.Time) any {
				return events.EmailLinkIssued{
					Purpose: events.LinkResetPassword, UserID: userID, Email: personal("email link email", len("alice@acme.example")), UserVersion: 3,
					// 32 token bytes and the 16-byte GCM tag.
					Token:     events.Sealed{KID: "kek-2025-03", Nonce: fake("email link token 1 nonce", 12), Ciphertext: fake("email link token 1", 48)},
					ExpiresAt: at.Add(30 * time.Minute),
				}
			}},
			{events.TypeEmailLinkUsed, events.System, events.EmailLinkUsed{Client: "203.0.113.7"}},
		}},
		// An invited user's invitation. Shipped goldens hold each type once
		// and the chains of their files must be whole, so the registration
		// that comes first in the same batch is left out and this is the
		// aggregate's first event here. The id is derived so that the ids
		// above stay.
		{events.AggregateUser, events.DeriveID("golden", "invited user"), []step{
			{events.TypeUserInvited, tenantAdmin, events.UserInvited{Email: personal("invited email", len("dan@acme.example"))}},
		}},
		// A user's passkey: a registration started, the passkey registered,
		// then removed by the user. The user id is derived so that the ids
		// above stay as they were.
		{events.AggregateUser, events.DeriveID("golden", "passkey user"), []step{
			{events.TypeUserPasskeyRegistrationStarted, events.Actor{Tenant: tenant, Sub: events.DeriveID("golden", "passkey user")}, events.UserPasskeyRegistrationStarted{
				// about 300 bytes of ceremony state plus the 16-byte GCM tag.
				Ceremony: events.Sealed{KID: "kek-2025-03", Nonce: fake("passkey ceremony nonce", 12), Ciphertext: fake("passkey ceremony", 316)}}},
			{events.TypeUserPasskeyRegistered, events.Actor{Tenant: tenant, Sub: events.DeriveID("golden", "passkey user")}, events.UserPasskeyRegistered{
				CredentialID: "b3Vy7mH1x9Kq0mJ2c2lnbmluZy1rZXktb2YtYS1wYXNza2V5",
				PublicKey:    "pQECAyYgASFYIEm0kB1c8H2Qv0oRZkqMjXwTgYb5rD7nW4cA1sE9fL3hIlggQm2vT8yX0pN5kR7wJ3dF6cH1bL4qS9zV2xM8nA0eY5g",
				SignCount:    1, Transports: []string{"internal", "hybrid"},
				AAGUID: "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", Name: "Pixel 9",
				Format: "none", BackupEligible: true, BackupState: true, UserVerified: true,
			}},
			{events.TypeUserPasskeyRemoved, events.Actor{Tenant: tenant, Sub: events.DeriveID("golden", "passkey user")}, events.UserPasskeyRemoved{
				CredentialID: "b3Vy7mH1x9Kq0mJ2c2lnbmluZy1rZXktb2YtYS1wYXNza2V5"}},
		}},
		// A tenant's own reset-password mail: a subject and a text, the
		// HTML left to the default.
		{events.AggregateTenant, tenant, []step{
			{events.TypeTenantMailTemplateChanged, tenantAdmin, events.TenantMailTemplateChanged{
				Purpose: events.LinkResetPassword,
				Template: events.MailTemplate{
					Subject: "Acme: choose a new password",
					Text:    "Hello,\n\nto choose a new password for {{.Email}}, open {{.Link}} within {{.ValidFor}}.\n",
				}}},
		}},
	}
	at := base
	prevOf, versionOf := map[string]string{}, map[string]uint64{}
	for _, h := range histories {
		for _, s := range h.steps {
			at = at.Add(17*time.Minute + 123456789*time.Nanosecond)
			data := s.data
			if f, ok := data.(func(time.Time) any); ok {
				data = f(at)
			}
			env, err := events.New(s.typ, data, events.Meta{
				ID: id(), Tenant: tenant, Aggregate: h.aggregate, AggregateID: h.id,
				OccurredAt: at, Actor: s.actor, Trace: trace,
			})
			if err != nil {
				t.Fatal(err)
			}
			k := h.aggregate + "/" + h.id
			versionOf[k]++
			if err := events.Chain(prevOf[k], versionOf[k], &env); err != nil {
				t.Fatal(err)
			}
			prevOf[k] = env.Hash
			path := filepath.Join("testdata", fmt.Sprintf("%s.v%d.json", env.Type, env.Schema))
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				continue // shipped: never rewritten
			}
			body, err := json.MarshalIndent(env, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	}
}
