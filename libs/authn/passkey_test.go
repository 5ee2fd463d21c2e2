package authn_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authn/passkeytest"
)

func TestNewPasskeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url         string
		rpID        string
		origin      string
		unavailable bool
	}{
		{url: "https://login.example.com", rpID: "login.example.com", origin: "https://login.example.com"},
		{url: "http://localhost:8080/", rpID: "localhost", origin: "http://localhost:8080"},
		{url: "https://Login.Example.com:8443/base", rpID: "login.example.com", origin: "https://login.example.com:8443"},
		{url: "http://127.0.0.1:8080", unavailable: true},
		{url: "http://[::1]:8080", unavailable: true},
		{url: "ftp://example.com", unavailable: true},
		{url: "not a url", unavailable: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			p, err := authn.NewPasskeys(tt.url, "Acme")
			if tt.unavailable {
				if !errors.Is(err, authn.ErrPasskeysUnavailable) {
					t.Fatalf("err %v, want ErrPasskeysUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.RPID() != tt.rpID || p.Origin() != tt.origin {
				t.Fatalf("rp id %q origin %q, want %q %q", p.RPID(), p.Origin(), tt.rpID, tt.origin)
			}
		})
	}
}

// mustRegister registers a passkey of user with authenticator a.
func mustRegister(t *testing.T, p *authn.Passkeys, a *passkeytest.Authenticator, user authn.PasskeyUser) (authn.PasskeyCredential, *passkeytest.Credential) {
	t.Helper()
	opts, cer, err := p.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	resp, sc, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := p.FinishRegistration(user, cer, resp)
	if err != nil {
		t.Fatal(err)
	}
	return cred, sc
}

func TestPasskeys_RegisterAndSignIn(t *testing.T) {
	t.Parallel()
	p, err := authn.NewPasskeys("http://localhost:8080", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	a := passkeytest.New(p.Origin())
	user := authn.PasskeyUser{Handle: []byte("user-1"), Name: "alice"}
	cred, sc := mustRegister(t, p, a, user)
	if !bytes.Equal(cred.ID, sc.ID) || len(cred.PublicKey) == 0 || !cred.UserVerified || cred.Format != "none" {
		t.Fatalf("credential %+v", cred)
	}
	user.Credentials = []authn.PasskeyCredential{cred}

	// The ceremony survives its encoding (it is sealed between requests).
	for _, discoverable := range []bool{false, true} {
		var opts json.RawMessage
		var cer authn.PasskeyCeremony
		if discoverable {
			opts, cer, err = p.BeginLogin(nil)
		} else {
			opts, cer, err = p.BeginLogin(&user)
		}
		if err != nil {
			t.Fatal(err)
		}
		enc, err := cer.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back authn.PasskeyCeremony
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(opts, sc)
		if err != nil {
			t.Fatal(err)
		}
		as, err := authn.ParseAssertion(resp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(as.UserHandle, user.Handle) {
			t.Fatalf("user handle %q", as.UserHandle)
		}
		use, err := p.FinishLogin(user, back, as)
		if err != nil {
			t.Fatalf("discoverable %v: %v", discoverable, err)
		}
		if !bytes.Equal(use.Credential, cred.ID) || use.SignCount == 0 || !use.UserVerified {
			t.Fatalf("use %+v", use)
		}
	}
}

func TestPasskeys_FinishLoginRefuses(t *testing.T) {
	t.Parallel()
	p, err := authn.NewPasskeys("http://localhost:8080", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	a := passkeytest.New(p.Origin())
	alice := authn.PasskeyUser{Handle: []byte("alice-id"), Name: "alice"}
	bob := authn.PasskeyUser{Handle: []byte("bob-id"), Name: "bob"}
	ac, asc := mustRegister(t, p, a, alice)
	bc, bsc := mustRegister(t, p, a, bob)
	alice.Credentials, bob.Credentials = []authn.PasskeyCredential{ac}, []authn.PasskeyCredential{bc}

	other := passkeytest.New("http://evil.localhost:8080")
	tests := []struct {
		name     string
		discover bool
		respond  func(opts []byte, challenge string) ([]byte, error)
	}{
		{name: "another user's passkey", respond: func(opts []byte, _ string) ([]byte, error) { return a.Get(opts, bsc) }},
		{name: "another user's passkey, discoverable", discover: true, respond: func(opts []byte, _ string) ([]byte, error) { return a.Get(opts, bsc) }},
		{name: "another origin", respond: func(_ []byte, ch string) ([]byte, error) {
			return a.Assert(asc, "localhost", other.ClientData("webauthn.get", ch))
		}},
		{name: "another relying party id", respond: func(_ []byte, ch string) ([]byte, error) {
			return a.Assert(asc, "example.com", a.ClientData("webauthn.get", ch))
		}},
		{name: "another challenge", respond: func(_ []byte, _ string) ([]byte, error) {
			return a.Assert(asc, "localhost", a.ClientData("webauthn.get", "c3RhbGUtY2hhbGxlbmdlLW9mLWFub3RoZXItY2VyZW1vbnk"))
		}},
		{name: "a registration's client data", respond: func(_ []byte, ch string) ([]byte, error) {
			return a.Assert(asc, "localhost", a.ClientData("webauthn.create", ch))
		}},
		{name: "malformed json", respond: func(_ []byte, _ string) ([]byte, error) { return []byte(`{"id":`), nil }},
		{name: "malformed base64", respond: func(opts []byte, _ string) ([]byte, error) {
			r, err := a.Get(opts, asc)
			return bytes.Replace(r, []byte(`"signature":"`), []byte(`"signature":"*!`), 1), err
		}},
		{name: "altered signature", respond: func(opts []byte, _ string) ([]byte, error) {
			r, err := a.Get(opts, asc)
			var m map[string]any
			_ = json.Unmarshal(r, &m)
			resp := m["response"].(map[string]any)
			resp["signature"] = "MEUCIQDx" + strings.Repeat("A", 86)
			out, _ := json.Marshal(m)
			return out, err
		}},
		{name: "no user verification, discoverable", discover: true, respond: func(opts []byte, _ string) ([]byte, error) {
			return passkeytest.NoUV(a).Get(opts, asc)
		}},
		{name: "too large", respond: func(_ []byte, _ string) ([]byte, error) { return bytes.Repeat([]byte(" "), 64<<10), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts json.RawMessage
			var cer authn.PasskeyCeremony
			var err error
			if tt.discover {
				opts, cer, err = p.BeginLogin(nil)
			} else {
				opts, cer, err = p.BeginLogin(&alice)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tt.respond(opts, cer.Challenge())
			if err != nil {
				t.Fatal(err)
			}
			as, err := authn.ParseAssertion(resp)
			if err == nil {
				_, err = p.FinishLogin(alice, cer, as)
			}
			if !errors.Is(err, authn.ErrInvalidPasskey) {
				t.Fatalf("err %v, want ErrInvalidPasskey", err)
			}
			// The error goes to logs: it names what failed, never the
			// ceremony's challenge (the library's debug text would).
			if strings.Contains(err.Error(), cer.Challenge()) {
				t.Fatalf("error shows the challenge: %v", err)
			}
		})
	}
}

func TestPasskeys_FinishRegistrationRefuses(t *testing.T) {
	t.Parallel()
	p, err := authn.NewPasskeys("http://localhost:8080", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	user := authn.PasskeyUser{Handle: []byte("alice-id"), Name: "alice"}
	_, cer, err := p.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := p.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	opts, _, err := p.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	evil := passkeytest.New("https://evil.example")
	resp, _, err := passkeytest.New(p.Origin()).Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	evilResp, _, err := evil.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cer  authn.PasskeyCeremony
		resp []byte
	}{
		"another ceremony's challenge": {cer, resp},
		"another origin":               {other, evilResp},
		"malformed":                    {cer, []byte(`{"id":"x","rawId":"x","type":"public-key","response":{}}`)},
	} {
		if _, err := p.FinishRegistration(user, tc.cer, tc.resp); !errors.Is(err, authn.ErrInvalidPasskey) {
			t.Errorf("%s: err %v, want ErrInvalidPasskey", name, err)
		}
	}
}
