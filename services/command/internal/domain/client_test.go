package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

const clientID = "0190f3c4-8d2b-7a31-9c4e-2f5d6a7b8c9e"

// secretHash is the hash of a stand-in secret n.
func secretHash(n byte) string {
	sum := sha256.Sum256([]byte{n})
	return hex.EncodeToString(sum[:])
}

var graceEnd = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

// normalized is cfg as NormalizeClientConfig makes it.
func normalized(tb testing.TB, cfg events.ClientConfig) events.ClientConfig {
	tb.Helper()
	n, err := domain.NormalizeClientConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func nativeApp() events.ClientConfig {
	return events.ClientConfig{Name: "Acme iOS", Type: events.ClientPublic, RedirectURIs: []string{"com.acme.app:/cb"}}
}

type clientState struct {
	Exists        bool
	Status        domain.Status
	Config        events.ClientConfig
	Secret        string
	Previous      string
	PreviousUntil time.Time
	Roles         string
	Version       uint64
}

func stateOfClient(c *domain.Client) clientState {
	prev, until := c.PreviousSecret()
	return clientState{c.Exists(), c.Status(), c.Config(), c.SecretHash(), prev, until, strings.Join(c.Roles(), ","), c.Version()}
}

func TestClient_Commands(t *testing.T) {
	t.Parallel()
	web := normalized(t, webApp())
	native := normalized(t, nativeApp())
	registered := ev(events.TypeClientRegistered, events.ClientRegistered{Config: web, SecretHash: secretHash(1)})
	nativeRegistered := ev(events.TypeClientRegistered, events.ClientRegistered{Config: native})
	deleted := ev(events.TypeClientDeleted, events.ClientDeleted{})
	rotated := func(n, prev byte, until time.Time) domain.Pending {
		return ev(events.TypeClientSecretRotated, events.ClientSecretRotated{SecretHash: secretHash(n), PreviousSecretHash: secretHash(prev), PreviousSecretExpiresAt: until})
	}
	roleAssigned := func(r string) domain.Pending {
		return ev(events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: r})
	}
	roleUnassigned := func(r string) domain.Pending {
		return ev(events.TypeClientRoleUnassigned, events.ClientRoleUnassigned{Role: r})
	}
	renamed := webApp()
	renamed.Name = "Acme Web 2"
	updated := ev(events.TypeClientUpdated, events.ClientUpdated{Config: normalized(t, renamed)})
	live := []domain.Pending{registered}
	gone := []domain.Pending{registered, deleted}
	withRole := []domain.Pending{registered, roleAssigned("billing")}
	update := func(cfg events.ClientConfig) func(*domain.Client) error {
		return func(c *domain.Client) error { return c.Update(cfg) }
	}
	untyped := renamed
	untyped.Type = ""
	toPublic := renamed
	toPublic.Type = events.ClientPublic

	tests := []struct {
		name    string
		history []domain.Pending
		cmd     func(*domain.Client) error
		wantErr error
		want    []domain.Pending
	}{
		{name: "register confidential", cmd: func(c *domain.Client) error { return c.Register(webApp(), secretHash(1)) }, want: []domain.Pending{registered}},
		{name: "register public", cmd: func(c *domain.Client) error { return c.Register(nativeApp(), "") }, want: []domain.Pending{nativeRegistered}},
		{name: "register confidential without secret", cmd: func(c *domain.Client) error { return c.Register(webApp(), "") }, wantErr: domain.ErrInvalidClientSecret},
		{name: "register with an upper-case hash", cmd: func(c *domain.Client) error {
			return c.Register(webApp(), strings.ToUpper(secretHash(1)))
		}, wantErr: domain.ErrInvalidClientSecret},
		{name: "register with a short hash", cmd: func(c *domain.Client) error { return c.Register(webApp(), "abcd") }, wantErr: domain.ErrInvalidClientSecret},
		{name: "register public with a secret", cmd: func(c *domain.Client) error { return c.Register(nativeApp(), secretHash(1)) }, wantErr: domain.ErrInvalidClientSecret},
		{name: "register invalid config", cmd: func(c *domain.Client) error {
			cfg := webApp()
			cfg.RedirectURIs = []string{"http://evil.example/cb"}
			return c.Register(cfg, secretHash(1))
		}, wantErr: domain.ErrInvalidClientConfig},
		{name: "register twice", history: live, cmd: func(c *domain.Client) error { return c.Register(webApp(), secretHash(2)) }, wantErr: domain.ErrClientExists},
		{name: "register a deleted id", history: gone, cmd: func(c *domain.Client) error { return c.Register(webApp(), secretHash(2)) }, wantErr: domain.ErrClientExists},

		{name: "update", history: live, cmd: update(renamed), want: []domain.Pending{updated}},
		{name: "update keeps the type when omitted", history: live, cmd: update(untyped), want: []domain.Pending{updated}},
		{name: "update to the same is a no-op", history: live, cmd: update(webApp())},
		{name: "update changing the type", history: live, cmd: update(toPublic), wantErr: domain.ErrClientTypeChange},
		{name: "update invalid", history: live, cmd: update(events.ClientConfig{Name: "x", RedirectURIs: []string{"https://a.example/#x"}}), wantErr: domain.ErrInvalidClientConfig},
		{name: "update absent", cmd: update(renamed), wantErr: domain.ErrClientNotFound},
		{name: "update deleted", history: gone, cmd: update(renamed), wantErr: domain.ErrClientDeleted},

		{name: "rotate", history: live, cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(2), graceEnd) }, want: []domain.Pending{rotated(2, 1, graceEnd)}},
		{name: "rotate twice: the previous is the last one", history: []domain.Pending{registered, rotated(2, 1, graceEnd)},
			cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(3), graceEnd.Add(time.Hour)) }, want: []domain.Pending{rotated(3, 2, graceEnd.Add(time.Hour))}},
		{name: "rotate to the current secret", history: live, cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(1), graceEnd) }, wantErr: domain.ErrInvalidClientSecret},
		{name: "rotate without grace end", history: live, cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(2), time.Time{}) }, wantErr: domain.ErrInvalidClientSecret},
		{name: "rotate with a bad hash", history: live, cmd: func(c *domain.Client) error { return c.RotateSecret("secret", graceEnd) }, wantErr: domain.ErrInvalidClientSecret},
		{name: "rotate a public client", history: []domain.Pending{nativeRegistered}, cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(2), graceEnd) }, wantErr: domain.ErrPublicClient},
		{name: "rotate absent", cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(2), graceEnd) }, wantErr: domain.ErrClientNotFound},
		{name: "rotate deleted", history: gone, cmd: func(c *domain.Client) error { return c.RotateSecret(secretHash(2), graceEnd) }, wantErr: domain.ErrClientDeleted},

		{name: "delete", history: withRole, cmd: (*domain.Client).Delete, want: []domain.Pending{deleted}},
		{name: "delete public", history: []domain.Pending{nativeRegistered}, cmd: (*domain.Client).Delete, want: []domain.Pending{deleted}},
		{name: "delete absent", cmd: (*domain.Client).Delete, wantErr: domain.ErrClientNotFound},
		{name: "delete deleted", history: gone, cmd: (*domain.Client).Delete, wantErr: domain.ErrClientDeleted},

		{name: "assign", history: live, cmd: func(c *domain.Client) error { return c.AssignRole("billing") }, want: []domain.Pending{roleAssigned("billing")}},
		{name: "assign admin", history: live, cmd: func(c *domain.Client) error { return c.AssignRole("admin") }, want: []domain.Pending{roleAssigned("admin")}},
		{name: "assign held is a no-op", history: withRole, cmd: func(c *domain.Client) error { return c.AssignRole("billing") }},
		{name: "assign bad name", history: live, cmd: func(c *domain.Client) error { return c.AssignRole("Billing") }, wantErr: domain.ErrInvalidRoleName},
		{name: "assign to a public client", history: []domain.Pending{nativeRegistered}, cmd: func(c *domain.Client) error { return c.AssignRole("billing") }, wantErr: domain.ErrPublicClient},
		{name: "assign to absent", cmd: func(c *domain.Client) error { return c.AssignRole("billing") }, wantErr: domain.ErrClientNotFound},
		{name: "assign to deleted", history: gone, cmd: func(c *domain.Client) error { return c.AssignRole("billing") }, wantErr: domain.ErrClientDeleted},

		{name: "unassign", history: withRole, cmd: func(c *domain.Client) error { return c.UnassignRole("billing") }, want: []domain.Pending{roleUnassigned("billing")}},
		{name: "unassign not held is a no-op", history: withRole, cmd: func(c *domain.Client) error { return c.UnassignRole("viewer") }},
		{name: "unassign from a public client is a no-op", history: []domain.Pending{nativeRegistered}, cmd: func(c *domain.Client) error { return c.UnassignRole("viewer") }},
		{name: "unassign bad name", history: withRole, cmd: func(c *domain.Client) error { return c.UnassignRole("a.b") }, wantErr: domain.ErrInvalidRoleName},
		{name: "unassign from absent", cmd: func(c *domain.Client) error { return c.UnassignRole("billing") }, wantErr: domain.ErrClientNotFound},
		{name: "unassign from deleted", history: gone, cmd: func(c *domain.Client) error { return c.UnassignRole("billing") }, wantErr: domain.ErrClientDeleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoadClient(t, clientID, tc.history...)
			checkErr(t, tc.cmd(c), tc.wantErr)
			checkRecorded(t, c, len(tc.history), tc.want)
			reloaded := mustLoadClient(t, clientID, append(slices.Clone(tc.history), c.Pending()...)...)
			if got, want := stateOfClient(reloaded), stateOfClient(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("reloaded state %+v, want %+v", got, want)
			}
		})
	}
}

func TestLoadClient(t *testing.T) {
	t.Parallel()
	web := normalized(t, webApp())
	registered := ev(events.TypeClientRegistered, events.ClientRegistered{Config: web, SecretHash: secretHash(1)})
	rotated := ev(events.TypeClientSecretRotated, events.ClientSecretRotated{SecretHash: secretHash(2), PreviousSecretHash: secretHash(1), PreviousSecretExpiresAt: graceEnd})
	tests := []struct {
		name    string
		history []domain.Pending
		want    clientState
	}{
		{name: "absent", want: clientState{}},
		{name: "registered", history: []domain.Pending{registered}, want: clientState{true, domain.StatusActive, web, secretHash(1), "", time.Time{}, "", 1}},
		{name: "rotated", history: []domain.Pending{registered, rotated}, want: clientState{true, domain.StatusActive, web, secretHash(2), secretHash(1), graceEnd, "", 2}},
		{name: "roles sorted", history: []domain.Pending{registered,
			ev(events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "viewer"}),
			ev(events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "billing"})},
			want: clientState{true, domain.StatusActive, web, secretHash(1), "", time.Time{}, "billing,viewer", 3}},
		{name: "deleted drops secrets and roles", history: []domain.Pending{registered, rotated,
			ev(events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "billing"}), ev(events.TypeClientDeleted, events.ClientDeleted{})},
			want: clientState{false, domain.StatusDeleted, web, "", "", time.Time{}, "", 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := stateOfClient(mustLoadClient(t, clientID, tc.history...)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("state %+v\nwant  %+v", got, tc.want)
			}
		})
	}
}

// TestLoadClient_corrupt refuses histories no command could have written.
func TestLoadClient_corrupt(t *testing.T) {
	t.Parallel()
	native := normalized(t, nativeApp())
	web := normalized(t, webApp())
	for name, history := range map[string][]domain.Pending{
		"type changed by an update": {ev(events.TypeClientRegistered, events.ClientRegistered{Config: native}), ev(events.TypeClientUpdated, events.ClientUpdated{Config: web})},
		"secret of a public client": {ev(events.TypeClientRegistered, events.ClientRegistered{Config: native}),
			ev(events.TypeClientSecretRotated, events.ClientSecretRotated{SecretHash: secretHash(2), PreviousSecretExpiresAt: graceEnd})},
		"a user's event": {ev(events.TypeUserEnabled, events.UserEnabled{})},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.LoadClient(clientID, mustEnvelopes(t, events.AggregateClient, clientID, history...))
			checkErr(t, err, domain.ErrCorruptHistory)
		})
	}
	for _, id := range []string{"", "a.b", "a*", "a b", strings.Repeat("c", 300)} {
		_, err := domain.LoadClient(id, nil)
		checkErr(t, err, domain.ErrInvalidClientID)
	}
}

// TestClient_Advance: folding a history in two parts gives the state of
// folding it at once, and a copy a command changes leaves the original as
// it was.
func TestClient_Advance(t *testing.T) {
	t.Parallel()
	history := mustEnvelopes(t, events.AggregateClient, clientID,
		ev(events.TypeClientRegistered, events.ClientRegistered{Config: normalized(t, webApp()), SecretHash: secretHash(1)}),
		ev(events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "billing"}),
		ev(events.TypeClientSecretRotated, events.ClientSecretRotated{SecretHash: secretHash(2), PreviousSecretHash: secretHash(1), PreviousSecretExpiresAt: graceEnd}))
	whole, err := domain.LoadClient(clientID, history)
	if err != nil {
		t.Fatal(err)
	}
	for split := range len(history) + 1 {
		c, err := domain.LoadClient(clientID, history[:split])
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Advance(history[split:]); err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
		if got, want := stateOfClient(c), stateOfClient(whole); !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d: %+v, want %+v", split, got, want)
		}
	}
	cp := whole.Clone()
	renamed := webApp()
	renamed.Name, renamed.RedirectURIs = "Other", []string{"https://other.example/cb"}
	if err := cp.Update(renamed); err != nil {
		t.Fatal(err)
	}
	if err := cp.AssignRole("viewer"); err != nil {
		t.Fatal(err)
	}
	cp.Config().RedirectURIs[0] = "changed through a copy"
	if whole.Config().Name != "Acme Web" || whole.HasRole("viewer") || len(whole.Pending()) != 0 || whole.Version() != 3 {
		t.Fatalf("original changed with its copy: %+v", stateOfClient(whole))
	}
	if cp.Config().RedirectURIs[0] != "https://other.example/cb" || len(cp.Pending()) != 2 {
		t.Fatalf("copy: %+v, %d pending", stateOfClient(cp), len(cp.Pending()))
	}
}

func mustLoadClient(tb testing.TB, id string, history ...domain.Pending) *domain.Client {
	tb.Helper()
	c, err := domain.LoadClient(id, mustEnvelopes(tb, events.AggregateClient, id, history...))
	if err != nil {
		tb.Fatalf("LoadClient(%q): %v", id, err)
	}
	return c
}
