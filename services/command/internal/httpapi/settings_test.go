package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// mergePatch is the Content-Type header of a merge patch.
var mergePatch = []string{"Content-Type", httpapi.MergePatchContentType}

// settingsOf decodes a settings answer as a generic document, so that
// absent and present members are told apart.
func settingsOf(tb testing.TB, r reply) map[string]any {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("content type %q", ct)
	}
	var m map[string]any
	r.decode(tb, &m)
	return m
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestChangeSettings drives PATCH /t/{tenant}/settings through a tenant's
// life: first settings, a merge, a no-op, removal, and the events left.
func TestChangeSettings(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	const path = "/t/acme/settings"

	r := s.do(t, "PATCH", path, acme.AdminToken, raw(`{"display_name":"Acme Corp","password_grant":false,"rate_limits":{"account_attempts_per_minute":10}}`), mergePatch...).
		mustStatus(t, http.StatusOK)
	want := `{"display_name":"Acme Corp","password_grant":false,"rate_limits":{"account_attempts_per_minute":10}}`
	if got := mustJSON(t, settingsOf(t, r)); got != want {
		t.Fatalf("first patch answered %s, want %s", got, want)
	}
	if seq := r.mustToken(t); seq != s.LastSeq(t) {
		t.Errorf("consistency token %d, stream at %d", seq, s.LastSeq(t))
	}

	// application/json is accepted too; members merge.
	r = s.do(t, "PATCH", path, acme.AdminToken, raw(`{"rate_limits":{"address_attempts_per_minute":600},"display_name":null}`)).
		mustStatus(t, http.StatusOK)
	want = `{"password_grant":false,"rate_limits":{"account_attempts_per_minute":10,"address_attempts_per_minute":600}}`
	if got := mustJSON(t, settingsOf(t, r)); got != want {
		t.Fatalf("merge answered %s, want %s", got, want)
	}

	// A patch that changes nothing appends nothing and answers the
	// document with the position of the tenant's last event.
	last := s.LastSeq(t)
	for _, noop := range []string{`{}`, `{"password_grant":false,"display_name":null}`} {
		r = s.do(t, "PATCH", path, acme.AdminToken, raw(noop), mergePatch...).mustStatus(t, http.StatusOK)
		if got := mustJSON(t, settingsOf(t, r)); got != want {
			t.Fatalf("no-op %s answered %s, want %s", noop, got, want)
		}
		if seq := r.mustToken(t); seq != last || s.LastSeq(t) != last {
			t.Fatalf("no-op %s: token %d, stream from %d to %d", noop, seq, last, s.LastSeq(t))
		}
	}

	// Removing everything leaves the empty document.
	r = s.do(t, "PATCH", path, acme.AdminToken, raw(`{"password_grant":null,"rate_limits":null}`), mergePatch...).mustStatus(t, http.StatusOK)
	if got := mustJSON(t, settingsOf(t, r)); got != `{}` {
		t.Fatalf("removal answered %s, want {}", got)
	}

	// Each change is one tenant.settings_changed with the whole document,
	// by the tenant's admin.
	var docs []string
	for _, e := range s.Events(t, "acme", events.AggregateTenant, "acme") {
		if e.Type != events.TypeTenantSettingsChanged {
			continue
		}
		if e.Actor != (events.Actor{Tenant: "acme", Sub: acme.AdminID}) {
			t.Errorf("actor %+v", e.Actor)
		}
		docs = append(docs, string(e.Data))
	}
	wantDocs := []string{
		`{"settings":{"display_name":"Acme Corp","password_grant":false,"rate_limits":{"account_attempts_per_minute":10}}}`,
		`{"settings":{"password_grant":false,"rate_limits":{"account_attempts_per_minute":10,"address_attempts_per_minute":600}}}`,
		`{"settings":{}}`,
	}
	if strings.Join(docs, "\n") != strings.Join(wantDocs, "\n") {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(docs, "\n"), strings.Join(wantDocs, "\n"))
	}
}

// TestChangeSettings_Refused sends bad patches and callers who may not
// change the settings: each gets its 4xx problem and stores nothing.
func TestChangeSettings_Refused(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, globex := s.mustTenant(t, "acme"), s.mustTenant(t, "globex")
	s.mustRole(t, acme, "user-admin", "users:*", "roles:*")
	s.mustRole(t, acme, "settings-admin", "settings:write")
	userAdmin := s.Token(t, "acme", s.mustUser(t, acme, "uma", "user-admin"))
	settingsAdmin := s.Token(t, "acme", s.mustUser(t, acme, "sam", "settings-admin"))
	s.do(t, "POST", "/tenants/globex/disable", s.PlatformToken(t), nil).mustStatus(t, http.StatusNoContent)
	const path = "/t/acme/settings"

	tests := []struct {
		name   string
		path   string
		token  string
		body   any
		hdr    []string
		want   int
		reason string
		detail string // a part of the problem's detail
	}{
		{"unknown member", path, acme.AdminToken, raw(`{"display_nam":"Acme"}`), mergePatch, 400, "invalid-settings", `unknown settings member "display_nam"`},
		{"unknown nested member", path, acme.AdminToken, raw(`{"rate_limits":{"burst":1}}`), mergePatch, 400, "invalid-settings", `"rate_limits.burst"`},
		{"limit out of range", path, acme.AdminToken, raw(`{"rate_limits":{"address_attempts_per_minute":0}}`), mergePatch, 400, "invalid-settings", "rate_limits.address_attempts_per_minute must be an integer from 1 to 100000"},
		{"display name too long", path, acme.AdminToken, raw(`{"display_name":"` + strings.Repeat("x", 101) + `"}`), mergePatch, 400, "invalid-settings", "display_name"},
		{"wrong type", path, acme.AdminToken, raw(`{"password_grant":"no"}`), mergePatch, 400, "invalid-settings", "password_grant must be true or false"},
		{"an array", path, acme.AdminToken, raw(`[{"op":"replace","path":"/display_name","value":"x"}]`), mergePatch, 400, "invalid-settings", "must be a JSON object"},
		{"null", path, acme.AdminToken, raw(`null`), mergePatch, 400, "invalid-settings", "must be a JSON object"},
		{"malformed json", path, acme.AdminToken, raw(`{"display_name":`), mergePatch, 400, "malformed-json", ""},
		{"empty body", path, acme.AdminToken, raw(""), mergePatch, 400, "malformed-json", ""},
		{"oversized body", path, acme.AdminToken, raw(`{"display_name":"` + strings.Repeat("a", 70<<10) + `"}`), mergePatch, 413, "body-too-large", ""},
		{"json patch", path, acme.AdminToken, raw(`[]`), []string{"Content-Type", "application/json-patch+json"}, 415, "unsupported-media-type", "merge-patch+json"},
		{"form", path, acme.AdminToken, raw(`display_name=x`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported-media-type", ""},
		{"without settings:write", path, userAdmin, raw(`{"password_grant":false}`), mergePatch, 403, "missing-permission", "settings:write"},
		{"no token", path, "", raw(`{"password_grant":false}`), mergePatch, 401, "missing-token", ""},
		{"acme admin at globex", "/t/globex/settings", acme.AdminToken, raw(`{"password_grant":false}`), mergePatch, 401, "invalid-token", ""},
		{"platform admin at acme", path, s.PlatformToken(t), raw(`{"password_grant":false}`), mergePatch, 401, "invalid-token", ""},
		{"disabled tenant", "/t/globex/settings", globex.AdminToken, raw(`{"password_grant":false}`), mergePatch, 403, "tenant-disabled", ""},
		{"malformed tenant", "/t/NOT_A_SLUG/settings", acme.AdminToken, raw(`{}`), mergePatch, 404, "tenant-not-found", ""},
		{"wrong method", path, acme.AdminToken, raw(`{}`), nil, 405, "method-not-allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastSeq(t)
			method := "PATCH"
			if tt.want == http.StatusMethodNotAllowed {
				method = "PUT"
			}
			r := s.do(t, method, tt.path, tt.token, tt.body, tt.hdr...)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.want, r.Body)
			}
			p := r.problem(t)
			if p.Reason != tt.reason || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("reason %q detail %q, want %q with %q", p.Reason, p.Detail, tt.reason, tt.detail)
			}
			if tt.want == http.StatusUnsupportedMediaType && r.Header.Get("Accept-Patch") != httpapi.MergePatchContentType {
				t.Errorf("415 with Accept-Patch %q", r.Header.Get("Accept-Patch"))
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}

	// settings:write alone is enough.
	r := s.do(t, "PATCH", path, settingsAdmin, raw(`{"password_grant":false}`), mergePatch...).mustStatus(t, http.StatusOK)
	if got := mustJSON(t, settingsOf(t, r)); got != `{"password_grant":false}` {
		t.Fatalf("answered %s", got)
	}
}

// TestChangeSettings_IdempotencyKey: a retry with the same key answers the
// original document, even after a later change; the key with another
// patch is refused.
func TestChangeSettings_IdempotencyKey(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	const path = "/t/acme/settings"
	key := func(k string) []string {
		return []string{"Content-Type", httpapi.MergePatchContentType, httpapi.HeaderIdempotencyKey, k}
	}

	first := s.do(t, "PATCH", path, acme.AdminToken, raw(`{"display_name":"Acme","password_grant":false}`), key("k1")...).mustStatus(t, http.StatusOK)
	seq := first.mustToken(t)
	s.do(t, "PATCH", path, acme.AdminToken, raw(`{"display_name":"Later"}`), mergePatch...).mustStatus(t, http.StatusOK)
	last := s.LastSeq(t)

	// The same patch with its members in another order is the same request.
	retry := s.do(t, "PATCH", path, acme.AdminToken, raw(`{"password_grant":false, "display_name":"Acme"}`), key("k1")...).mustStatus(t, http.StatusOK)
	if retry.Header.Get(httpapi.HeaderReplayed) != "true" || retry.mustToken(t) != seq {
		t.Fatalf("retry: replayed %q, token %d (want %d)", retry.Header.Get(httpapi.HeaderReplayed), retry.mustToken(t), seq)
	}
	if got := mustJSON(t, settingsOf(t, retry)); got != `{"display_name":"Acme","password_grant":false}` {
		t.Fatalf("retry answered %s, want the original document", got)
	}
	p := s.do(t, "PATCH", path, acme.AdminToken, raw(`{"display_name":"Other"}`), key("k1")...).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if p.Reason != "idempotency-key-reused" {
		t.Errorf("reason %q", p.Reason)
	}
	if s.LastSeq(t) != last {
		t.Errorf("stream moved from %d to %d", last, s.LastSeq(t))
	}
}
