package webapp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

// The application's own tests run it against a stand-in provider: go-oidc's
// oidctest serves the keys, and this file the discovery document, the
// token and userinfo endpoints, and a way to approve an authorization
// request without a sign-in page. It checks what a provider must (the
// client's secret, the redirect URI, the PKCE verifier) and can be told
// to answer wrongly, so that the tests see the application refuse. The
// journeys against the real provider are in services/authstream.

// opKeyID is the kid of the stand-in provider's one key.
const opKeyID = "k1"

// grant is an authorization request the stand-in approved.
type grant struct {
	clientID, redirectURI, challenge, nonce string
}

// fakeOP is the stand-in provider.
type fakeOP struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	secret   string // "" for a public client

	mu     sync.Mutex
	codes  map[string]grant
	tokens map[string]string // access token → sub
	// idClaims, when set, changes the claims of the ID tokens it issues.
	idClaims func(map[string]any)
	// userinfoSub, when set, is the sub userinfo answers.
	userinfoSub string
	// noIss leaves iss out of the authorization responses.
	noIss bool
	// authHeader is the Authorization header of the last token request.
	authHeader string
	// issued is the last ID token issued.
	issued string
}

// newFakeOP starts a stand-in provider for clientID (confidential when
// secret is not empty).
func newFakeOP(tb testing.TB, key *rsa.PrivateKey, clientID, secret string) *fakeOP {
	tb.Helper()
	op := &fakeOP{key: key, clientID: clientID, secret: secret, codes: map[string]grant{}, tokens: map[string]string{}}
	keys := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: opKeyID, Algorithm: oidc.RS256}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.Handle("GET /keys", keys)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	op.srv = httptest.NewServer(mux)
	tb.Cleanup(op.srv.Close)
	keys.SetIssuer(op.srv.URL)
	return op
}

// mustKey returns an RSA key for a stand-in provider.
func mustKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func (op *fakeOP) issuer() string { return op.srv.URL }

// lastToken returns the Authorization header of the last token request
// and the last ID token issued.
func (op *fakeOP) lastToken() (authHeader, idToken string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.authHeader, op.issued
}

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := op.issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"jwks_uri": iss + "/keys", "userinfo_endpoint": iss + "/userinfo", "end_session_endpoint": iss + "/logout",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"authorization_response_iss_parameter_supported": true,
	})
}

// approve decides the authorization request at authURL as a provider
// whose user signed in: it checks the request and returns the URL it
// redirects the browser to, with a new code, the state and iss.
func (op *fakeOP) approve(tb testing.TB, authURL string) string {
	tb.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host+u.Path != op.issuer()+"/authorize" || q.Get("response_type") != "code" || q.Get("client_id") != op.clientID ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		tb.Fatalf("authorization request %s", authURL)
	}
	code := rand.Text()
	op.mu.Lock()
	op.codes[code] = grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
	op.mu.Unlock()
	back := url.Values{"code": {code}, "state": {q.Get("state")}}
	if !op.noIss {
		back.Set("iss", op.issuer())
	}
	return q.Get("redirect_uri") + "?" + back.Encode()
}

// token redeems a code: the client authenticated (its secret, or its id
// alone for a public client), the redirect URI and the PKCE verifier of
// the request.
func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.authHeader = r.Header.Get("Authorization")
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	g, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case id != op.clientID || secret != op.secret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case r.PostForm.Get("grant_type") != "authorization_code" || !ok || g.clientID != id || g.redirectURI != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	access := rand.Text()
	op.tokens[access] = "user-1"
	at := sha256.Sum256([]byte(access))
	now := time.Now()
	claims := map[string]any{
		"iss": op.issuer(), "sub": "user-1", "aud": op.clientID, "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(),
		"nonce": g.nonce, "at_hash": base64.RawURLEncoding.EncodeToString(at[:16]), "sid": "browser-1",
	}
	if op.idClaims != nil {
		op.idClaims(claims)
	}
	raw, _ := json.Marshal(claims)
	op.issued = oidctest.SignIDToken(op.key, opKeyID, oidc.RS256, string(raw))
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": op.issued})
}

func (op *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	sub, ok := "", false
	if len(h) > len(prefix) && h[:len(prefix)] == prefix {
		sub, ok = op.tokens[h[len(prefix):]]
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if op.userinfoSub != "" {
		sub = op.userinfoSub
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": sub, "preferred_username": "ada"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
