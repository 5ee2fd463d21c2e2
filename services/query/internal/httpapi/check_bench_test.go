package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCheck measures the service's own work for POST /check, without
// the network: an admin's bearer token and a check of another user of a
// tenant with ten roles, served by the handlers in process, the permission
// cache and verifier warm. What it leaves out (TCP, net/http's connection
// handling, the router's middleware) is the HTTP floor that GET /healthz
// measures in tools/bench.
func BenchmarkCheck(b *testing.B) {
	f := mustFixture(b)
	var roles []string
	for r := range 10 {
		name := "role-" + string(rune('a'+r))
		f.mustRole(b, "acme", name, "res"+string(rune('a'+r))+":read", "res"+string(rune('a'+r))+":write")
		roles = append(roles, name)
	}
	f.mustUser(b, "acme", "boss", "admin")
	user := f.mustUser(b, "acme", "clerk", roles...)
	tok := f.mustToken(b, "acme", "boss")
	body := `{"user_id":"` + user + `","permission":"resj:write"}`
	h := f.srv.Config.Handler
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/t/acme/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
		b.Fatalf("check: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if rec := serve(); rec.Code != http.StatusOK {
			b.Fatalf("check: %d %s", rec.Code, rec.Body)
		}
	}
	reportCPU(b, cpu)
}

// cpuTime returns the CPU time (user and system) the test process has
// used: on a shared machine, a steadier figure than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start
// (the embedded NATS server's included, PostgreSQL's not).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRefresh measures the refresh-token grant in process, without
// the network: each rotation reads the session's last event, decides,
// appends one event to the embedded JetStream and signs an access token;
// the session's user comes from the read model in PostgreSQL (or its
// cache). The JetStream server syncs on its own schedule here, so the
// figure is the service's CPU, not the synced append's wait.
func BenchmarkRefresh(b *testing.B) {
	f := mustFixture(b)
	f.mustUser(b, "acme", "alice", "admin")
	res, err := http.PostForm(f.srv.URL+"/t/acme/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	_ = res.Body.Close()
	if tok.RefreshToken == "" {
		b.Fatalf("login: %d", res.StatusCode)
	}
	h := f.srv.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/t/acme/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		tok.RefreshToken = ""
		if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || rec.Code != http.StatusOK || tok.RefreshToken == "" {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
	}
	reportCPU(b, cpu)
}
