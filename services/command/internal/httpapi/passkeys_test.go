package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/commandtest"
)

// TestPasskeys_Registration registers passkeys the way a browser does (a
// software authenticator answering the creation options), refuses
// responses that do not answer the ceremony, and removes one passkey,
// all of them, and resets them.
func TestPasskeys_Registration(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	id := s.mustUser(t, acme, "ivan")
	other := s.mustUser(t, acme, "judy")
	base := "/t/acme/users/" + id + "/mfa/webauthn"
	own := s.Token(t, "acme", id)
	authr := passkeytest.New(commandtest.PublicURL)

	// Another plain user may not register for ivan; a response needs a
	// registration under way.
	s.do(t, "POST", base, s.Token(t, "acme", other), nil).mustStatus(t, http.StatusForbidden)
	s.do(t, "POST", base+"/verify", own, map[string]any{"credential": map[string]any{}}).mustStatus(t, http.StatusConflict)

	begin := func() json.RawMessage {
		t.Helper()
		r := s.do(t, "POST", base, own, nil).mustStatus(t, http.StatusCreated)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		var body struct {
			PublicKey json.RawMessage `json:"publicKey"`
		}
		r.decode(t, &body)
		var opts struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
		}
		if err := json.Unmarshal(body.PublicKey, &opts); err != nil || opts.Challenge == "" || opts.RP.ID != "auth.test" {
			t.Fatalf("options %s", r.Body)
		}
		// The challenge is in the answer only: the log holds it sealed.
		for _, e := range s.Events(t, "acme", events.AggregateUser, id) {
			if strings.Contains(string(e.Data), opts.Challenge) {
				t.Fatalf("%s holds the challenge in clear", e.Type)
			}
		}
		return body.PublicKey
	}

	// Responses that do not answer the ceremony register nothing.
	opts := begin()
	evil := passkeytest.New("https://evil.test")
	evilResp, _, err := evil.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]any{
		"another origin": map[string]any{"credential": json.RawMessage(evilResp)},
		"malformed":      map[string]any{"credential": map[string]any{"id": "x", "type": "public-key", "response": map[string]any{"clientDataJSON": "*"}}},
		"not an object":  map[string]any{"credential": "a string"},
	} {
		p := s.do(t, "POST", base+"/verify", own, body).mustStatus(t, http.StatusBadRequest).problem(t)
		if p.Reason != "invalid-passkey" {
			t.Fatalf("%s: reason %q", name, p.Reason)
		}
	}
	resp, _, err := authr.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := s.do(t, "POST", base+"/verify", own, map[string]any{"credential": json.RawMessage(resp), "name": "phone"}).mustStatus(t, http.StatusCreated)
	var reg struct {
		CredentialID string `json:"credential_id"`
	}
	r.decode(t, &reg)
	evs := s.Events(t, "acme", events.AggregateUser, id)
	if last := evs[len(evs)-1]; last.Type != events.TypeUserPasskeyRegistered || !strings.Contains(string(last.Data), reg.CredentialID) || reg.CredentialID == "" {
		t.Fatalf("last event %s %s, answer %s", last.Type, last.Data, r.Body)
	}
	// The same response again: the ceremony is spent.
	s.do(t, "POST", base+"/verify", own, map[string]any{"credential": json.RawMessage(resp)}).mustStatus(t, http.StatusConflict)

	// A second passkey, registered by an administrator.
	opts = begin()
	resp, _, err = authr.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.do(t, "POST", base+"/verify", acme.AdminToken, map[string]any{"credential": json.RawMessage(resp)}).mustStatus(t, http.StatusCreated)

	// One removed, then a passkey it does not hold.
	s.do(t, "DELETE", base+"/"+reg.CredentialID, own, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "DELETE", base+"/"+reg.CredentialID, own, nil).mustStatus(t, http.StatusNotFound)
	s.do(t, "DELETE", base+"/"+reg.CredentialID, s.Token(t, "acme", other), nil).mustStatus(t, http.StatusForbidden)
	// Every passkey, then none left.
	s.do(t, "DELETE", base, own, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "DELETE", base, own, nil).mustStatus(t, http.StatusNotFound)

	// The administrator's reset takes the passkeys too.
	opts = begin()
	resp, _, err = authr.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.do(t, "POST", base+"/verify", own, map[string]any{"credential": json.RawMessage(resp)}).mustStatus(t, http.StatusCreated)
	s.do(t, "DELETE", "/t/acme/users/"+id+"/mfa", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	evs = s.Events(t, "acme", events.AggregateUser, id)
	if last := evs[len(evs)-1]; last.Type != events.TypeUserPasskeyRemoved || !strings.Contains(string(last.Data), `"reset":true`) {
		t.Fatalf("reset recorded %s %s", last.Type, last.Data)
	}
}
