package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// TestMetrics_providerGrants runs the OpenID Connect provider's grants
// and reads the query service's metrics: a sign-in on the hosted page is
// a login of the authorization_code grant and the redeemed code its
// token response; a service account's token is a client_credentials
// login and token; a wrong client secret is a refused client_credentials
// login and a refused client authentication.
func TestMetrics_providerGrants(t *testing.T) {
	t.Parallel()
	tel := telemetry.Nop()
	p := mustProvider(t, app.WithTelemetry(tel))
	r := mustBasicRP(t, p, "")
	r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	// A wrong password on the hosted page (prompt=login: the browser
	// holds a session now), which answers the form again.
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	r.submit(t, f, "alice", "not the password")

	svc := querytest.Confidential("billing-service", rpSecret)
	svc.GrantTypes = []string{app.GrantClientCredentials}
	p.oidc.Clients.Put("acme", svc)
	cc := clientcredentials.Config{ClientID: svc.ID, ClientSecret: rpSecret, TokenURL: p.issuer("acme") + "/oauth/token"}
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	cc.ClientSecret = "a wrong secret"
	if _, err := cc.Token(context.Background()); err == nil {
		t.Fatal("a wrong client secret got a token")
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m := rec.Body.String()
	for series, want := range map[string]float64{
		`authstream_logins_total{grant="authorization_code",result="success"}`: 1,
		`authstream_logins_total{grant="authorization_code",result="invalid"}`: 1,
		`authstream_tokens_issued_total{grant="authorization_code"}`:           1,
		`authstream_logins_total{grant="client_credentials",result="success"}`: 1,
		`authstream_logins_total{grant="client_credentials",result="invalid"}`: 1,
		`authstream_tokens_issued_total{grant="client_credentials"}`:           1,
		`authstream_client_authentications_total{result="ok"}`:                 2, // the code's client, the service account
		`authstream_client_authentications_total{result="invalid"}`:            1,
		`authstream_logins_total{grant="password",result="success"}`:           0,
		`authstream_password_hash_wait_seconds_count`:                          2,
	} {
		match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(m)
		if match == nil {
			t.Errorf("/metrics has no series %s", series)
			continue
		}
		if got, _ := strconv.ParseFloat(match[1], 64); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
