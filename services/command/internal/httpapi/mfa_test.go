package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
)

// TestMFA_TOTPEnrolment enrols a TOTP factor the way an app does (the
// user with their own token, codes computed from the secret), adds
// recovery codes, and removes and resets the factors.
func TestMFA_TOTPEnrolment(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	id := s.mustUser(t, acme, "ivan")
	other := s.mustUser(t, acme, "judy")
	base := "/t/acme/users/" + id + "/mfa"
	own := s.Token(t, "acme", id)

	// Another plain user may not enrol ivan; recovery codes and a
	// confirmation need an enrolment first.
	s.do(t, "POST", base+"/totp", s.Token(t, "acme", other), nil).mustStatus(t, http.StatusForbidden)
	s.do(t, "POST", base+"/recovery_codes", own, nil).mustStatus(t, http.StatusConflict)
	s.do(t, "POST", base+"/totp/verify", own, map[string]string{"code": "123456"}).mustStatus(t, http.StatusConflict)
	// A user who does not exist: 404, for an admin too.
	s.do(t, "POST", "/t/acme/users/"+events.NewID()+"/mfa/totp", acme.AdminToken, nil).mustStatus(t, http.StatusNotFound)

	r := s.do(t, "POST", base+"/totp", own, nil).mustStatus(t, http.StatusCreated)
	var key struct {
		Secret string `json:"secret"`
		URI    string `json:"otpauth_uri"`
		QRCode string `json:"qr_code"`
	}
	r.decode(t, &key)
	if !strings.HasPrefix(key.QRCode, "data:image/png;base64,") {
		t.Fatalf("qr_code %.40q", key.QRCode)
	}
	u, err := url.Parse(key.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != key.Secret || key.Secret == "" {
		t.Fatalf("enrolment answered %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	for _, e := range s.Events(t, "acme", events.AggregateUser, id) {
		if strings.Contains(string(e.Data), key.Secret) {
			t.Fatalf("%s holds the seed in clear: %s", e.Type, e.Data)
		}
	}

	// Wrong codes, malformed and out of the window, confirm nothing.
	now := time.Now()
	for _, bad := range []string{"", "12345", "abcdef", mustCode(t, key.Secret, now.Add(-2*authn.TOTPPeriod*time.Second)),
		mustCode(t, key.Secret, now.Add(2*authn.TOTPPeriod*time.Second))} {
		p := s.do(t, "POST", base+"/totp/verify", own, map[string]string{"code": bad}).mustStatus(t, http.StatusBadRequest).problem(t)
		if p.Reason != "invalid-code" {
			t.Fatalf("code %q: reason %q", bad, p.Reason)
		}
	}
	s.do(t, "POST", base+"/totp/verify", own, map[string]string{"code": mustCode(t, key.Secret, now)}).mustStatus(t, http.StatusNoContent)
	evs := s.Events(t, "acme", events.AggregateUser, id)
	if last := evs[len(evs)-1]; last.Type != events.TypeUserMFAEnrolled || strings.Contains(string(last.Data), key.Secret) {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
	// A second enrolment needs the first removed.
	s.do(t, "POST", base+"/totp", own, nil).mustStatus(t, http.StatusConflict)

	r = s.do(t, "POST", base+"/recovery_codes", own, nil).mustStatus(t, http.StatusCreated)
	var rc struct {
		Codes []string `json:"codes"`
	}
	r.decode(t, &rc)
	if len(rc.Codes) != authn.RecoveryCodes {
		t.Fatalf("recovery codes answered %s", r.Body)
	}
	evs = s.Events(t, "acme", events.AggregateUser, id)
	last := evs[len(evs)-1]
	for _, c := range rc.Codes {
		if strings.Contains(string(last.Data), c) || !strings.Contains(string(last.Data), authn.HashRecoveryCode(c)) {
			t.Fatalf("recovery code %q in clear or its hash missing: %s", c, last.Data)
		}
	}

	// Removing TOTP takes the recovery codes with it and ends the user's
	// sessions and tokens.
	s.do(t, "DELETE", base+"/sms", own, nil).mustStatus(t, http.StatusBadRequest)
	s.do(t, "DELETE", base+"/totp", own, nil).mustStatus(t, http.StatusNoContent)
	evs = s.Events(t, "acme", events.AggregateUser, id)
	if a, b := evs[len(evs)-2], evs[len(evs)-1]; a.Type != events.TypeUserMFARemoved || b.Type != events.TypeUserMFARemoved ||
		!strings.Contains(string(b.Data), "recovery_codes") {
		t.Fatalf("removal recorded %s %s, %s %s", a.Type, a.Data, b.Type, b.Data)
	}
	s.do(t, "DELETE", base+"/totp", s.Token(t, "acme", id), nil).mustStatus(t, http.StatusNotFound)

	// The reset is an administrator's: the user may not reset themself.
	s.do(t, "POST", base+"/totp", s.Token(t, "acme", id), nil).mustStatus(t, http.StatusCreated)
	s.do(t, "DELETE", base, s.Token(t, "acme", id), nil).mustStatus(t, http.StatusForbidden)
	s.do(t, "DELETE", base, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	evs = s.Events(t, "acme", events.AggregateUser, id)
	if last := evs[len(evs)-1]; last.Type != events.TypeUserMFARemoved || !strings.Contains(string(last.Data), `"reset":true`) {
		t.Fatalf("reset recorded %s %s", last.Type, last.Data)
	}
	// Nothing left: the reset is a no-op.
	s.do(t, "DELETE", base, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
}

func mustCode(tb testing.TB, secret string, at time.Time) string {
	tb.Helper()
	c, err := authn.TOTPCode(secret, at)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestMFA_offPolicy refuses enrolments in a tenant whose MFA policy is
// off.
func TestMFA_offPolicy(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	id := s.mustUser(t, acme, "kim")
	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, map[string]any{"mfa": map[string]any{"policy": "off"}}).mustStatus(t, http.StatusOK)
	p := s.do(t, "POST", "/t/acme/users/"+id+"/mfa/totp", s.Token(t, "acme", id), nil).mustStatus(t, http.StatusConflict).problem(t)
	if p.Reason != "mfa-off" {
		t.Fatalf("reason %q", p.Reason)
	}
	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, map[string]any{"mfa": map[string]any{"policy": "sometimes"}}).mustStatus(t, http.StatusBadRequest)
	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, map[string]any{"mfa": map[string]any{"policy": "required"}}).mustStatus(t, http.StatusOK)
	s.do(t, "POST", "/t/acme/users/"+id+"/mfa/totp", s.Token(t, "acme", id), nil).mustStatus(t, http.StatusCreated)
}
