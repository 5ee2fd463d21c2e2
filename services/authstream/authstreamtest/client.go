package authstreamtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/authstream/authstream/services/authstream"
)

// Client is how the suites talk to a running platform: HTTP requests to
// its services with the whole answer kept, password logins, tenants
// created with their first admin, and reads of its event log over NATS
// with the platform's own credentials. A Platform is one; NewClient makes
// one for a platform started otherwise (the built binary).
type Client struct {
	authstream.Endpoints

	// HTTP sends the requests; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Observe, when set, sees every request sent through Exchange, and so
	// through every method that takes a testing.TB, with its answer: a
	// suite records the answers or checks each one there.
	Observe func(tb testing.TB, r Request, res Response)

	natsOpts func(user string) ([]nats.Option, error)

	mu     sync.Mutex
	reader *nats.Conn // the connection of ReadStream and LastSeq
}

// NewClient returns a client of the platform at e, whose NATS server
// takes the credentials of users (user → password; nil for a server
// without users). Its NATS connection closes when the test ends.
func NewClient(tb testing.TB, e authstream.Endpoints, users map[string]string) *Client {
	tb.Helper()
	c := &Client{Endpoints: e, natsOpts: natsUsers(users)}
	tb.Cleanup(c.close)
	return c
}

// Request is one HTTP request of a test.
type Request struct {
	Method string
	// URL is absolute: a service's base URL and the path.
	URL string
	// Bearer and Consistency, when not empty, are sent as the
	// Authorization (Bearer) and Consistency-Token headers.
	Bearer, Consistency string
	// Body is sent as a form when it is a url.Values and as JSON when it is
	// anything else but nil.
	Body any
	// Raw, when Body is nil and Raw is not empty, is sent as it is with
	// ContentType (none when empty).
	Raw, ContentType string
	// Header holds more headers.
	Header map[string]string
}

// Response is one HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the JSON body into v and fails the test when it cannot.
func (r Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// JSON returns the body as a JSON object; nil when it is not one.
func (r Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Str returns the string member k of a JSON object body; "" when there is
// none.
func (r Response) Str(k string) string {
	s, _ := r.JSON()[k].(string)
	return s
}

// Token returns the Consistency-Token header of the answer.
func (r Response) Token() string { return r.Header.Get("Consistency-Token") }

// defaultHTTP sends the requests of a Client without its own.
var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// Send sends r and returns the answer, or the transport error for callers
// that expect some (a platform being killed). Observe does not see it.
func (c *Client) Send(r Request) (Response, error) {
	client := c.HTTP
	if client == nil {
		client = defaultHTTP
	}
	var (
		body io.Reader
		ct   = r.ContentType
	)
	switch b := r.Body.(type) {
	case nil:
		if r.Raw != "" {
			body = strings.NewReader(r.Raw)
		}
	case url.Values:
		body, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		body, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(r.Method, r.URL, body)
	if err != nil {
		return Response{}, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.Bearer)
	}
	if r.Consistency != "" {
		req.Header.Set("Consistency-Token", r.Consistency)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// Exchange sends r and returns the answer, whatever its status; a
// transport error fails the test.
func (c *Client) Exchange(tb testing.TB, r Request) Response {
	tb.Helper()
	res, err := c.Send(r)
	if err != nil {
		tb.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	if c.Observe != nil {
		c.Observe(tb, r, res)
	}
	return res
}

// Must sends r and fails the test unless it is answered want.
func (c *Client) Must(tb testing.TB, r Request, want int) Response {
	tb.Helper()
	res := c.Exchange(tb, r)
	if res.Status != want {
		tb.Fatalf("%s %s = %d %s, want %d", r.Method, r.URL, res.Status, res.Body, want)
	}
	return res
}

// Do sends one request to target (an absolute URL), with a body as Request
// takes it, and fails the test unless it is answered want.
func (c *Client) Do(tb testing.TB, method, target, bearer, consistency string, body any, want int) Response {
	tb.Helper()
	return c.Must(tb, Request{Method: method, URL: target, Bearer: bearer, Consistency: consistency, Body: body}, want)
}

// DoCommand sends a command to the command service (path under its base
// URL, a JSON body or nil) and fails the test unless it is answered want;
// a successful answer must carry a Consistency-Token, as every accepted
// command does.
func (c *Client) DoCommand(tb testing.TB, method, path, bearer string, body any, want int) Response {
	tb.Helper()
	res := c.Do(tb, method, c.Command+path, bearer, "", body, want)
	if want < 300 && res.Token() == "" {
		tb.Fatalf("%s %s answered no Consistency-Token", method, path)
	}
	return res
}

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// passwordGrant is the request of the password grant.
func (c *Client) passwordGrant(tenant, username, password, consistency string) Request {
	return Request{Method: http.MethodPost, URL: c.Query + "/t/" + tenant + "/oauth/token", Consistency: consistency,
		Body: url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}}
}

// tokens reads a token answer: an answer other than 200, or one without
// an access token, a refresh token, the Bearer type and a lifetime, is an
// error that carries the answer's body.
func tokens(tenant, username string, r Response) (Tokens, error) {
	if r.Status != http.StatusOK {
		return Tokens{}, fmt.Errorf("POST /t/%s/oauth/token as %s: %d %s", tenant, username, r.Status, r.Body)
	}
	var t Tokens
	if err := json.Unmarshal(r.Body, &t); err != nil {
		return Tokens{}, fmt.Errorf("token answer %s: %w", r.Body, err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.TokenType != "Bearer" || t.ExpiresIn <= 0 {
		return Tokens{}, fmt.Errorf("token answer %s is incomplete", r.Body)
	}
	return t, nil
}

// PasswordGrant runs the password grant of tenant, sending consistency as
// the Consistency-Token header when it is not empty. A transport error, or
// an answer other than a complete token answer, is an error (that carries
// the answer's body), for callers that expect refusals; Observe does not
// see it.
func (c *Client) PasswordGrant(tenant, username, password, consistency string) (Tokens, Response, error) {
	r, err := c.Send(c.passwordGrant(tenant, username, password, consistency))
	if err != nil {
		return Tokens{}, r, err
	}
	t, err := tokens(tenant, username, r)
	return t, r, err
}

// Login runs the password grant and fails the test unless it is answered
// with a complete token answer.
func (c *Client) Login(tb testing.TB, tenant, username, password, consistency string) Tokens {
	tb.Helper()
	t, err := tokens(tenant, username, c.Exchange(tb, c.passwordGrant(tenant, username, password, consistency)))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// NewTenant is a tenant for MustTenant to create.
type NewTenant struct {
	ID string
	// Name defaults to ID in capitals.
	Name string
	// Admin and Password are the tenant's first admin.
	Admin, Password string
	// SigningAlg, when not empty, is the tenant's signing algorithm.
	SigningAlg string
}

// Tenant is a tenant MustTenant created, with its admin logged in.
type Tenant struct {
	ID, AdminName, AdminPassword, AdminID string
	Admin                                 Tokens
	// Token is the Consistency-Token of the creation.
	Token string
}

// MustTenant has the platform admin (root, an access token) create
// tenant t, and logs its admin in with the creation's Consistency-Token.
func (c *Client) MustTenant(tb testing.TB, root string, t NewTenant) Tenant {
	tb.Helper()
	if t.Name == "" {
		t.Name = strings.ToUpper(t.ID)
	}
	body := map[string]any{"id": t.ID, "name": t.Name, "admin": map[string]any{"username": t.Admin, "password": t.Password}}
	if t.SigningAlg != "" {
		body["signing_alg"] = t.SigningAlg
	}
	created := c.DoCommand(tb, http.MethodPost, "/tenants", root, body, http.StatusCreated)
	if created.Str("id") != t.ID || created.Str("admin_user_id") == "" {
		tb.Fatalf("POST /tenants = %s", created.Body)
	}
	return Tenant{
		ID: t.ID, AdminName: t.Admin, AdminPassword: t.Password, AdminID: created.Str("admin_user_id"),
		Admin: c.Login(tb, t.ID, t.Admin, t.Password, created.Token()), Token: created.Token(),
	}
}

// WaitReady waits up to limit for base/readyz to answer 200: the services
// report listening before their first readiness check has run.
func WaitReady(tb testing.TB, base string, limit time.Duration) {
	tb.Helper()
	c := &Client{}
	deadline := time.Now().Add(limit)
	for {
		a, err := c.Send(Request{Method: http.MethodGet, URL: base + "/readyz"})
		if err == nil && a.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/readyz not ready after %s (%v, %d %s)", base, limit, err, a.Status, a.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
