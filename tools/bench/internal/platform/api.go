package platform

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
)

// Client talks to a platform's services over HTTP.
type Client struct {
	// Base URLs of the services.
	Query, Command, Projector string
	// HTTP is a keep-alive client with enough idle connections for the
	// benchmark's clients.
	HTTP *http.Client
}

// From returns a Client whose connections come from the loopback address
// ip (any of 127.0.0.0/8 on Linux), with a connection pool of its own. The
// query service limits password attempts per client address, as it
// should; a benchmark of the login path stands for many clients, so it
// spreads them over addresses. Close the Client's idle connections when
// done with it.
func (p *Client) From(ip net.IP) *Client {
	c := *p
	c.HTTP = newHTTPClient(&net.TCPAddr{IP: ip})
	return &c
}

// Close closes the Client's idle connections.
func (p *Client) Close() { p.HTTP.CloseIdleConnections() }

// Answer is what a service answered.
type Answer struct {
	Status int
	// Token is the Consistency-Token header of a command's answer.
	Token string
	Body  []byte
	// Location is the Location header of a redirect, which the Client
	// does not follow.
	Location string
	// Cookies are the cookies the answer sets.
	Cookies []*http.Cookie
}

// Sequence returns the stream sequence the answer's consistency token
// carries, or 0 without a valid one.
func (a Answer) Sequence() uint64 {
	seq, err := eventstore.DecodeToken(a.Token)
	if err != nil {
		return 0
	}
	return seq
}

// Decode unmarshals the answer's JSON body into dst.
func (a Answer) Decode(dst any) error {
	if err := json.Unmarshal(a.Body, dst); err != nil {
		return fmt.Errorf("answer %d %.200s: %w", a.Status, a.Body, err)
	}
	return nil
}

// Request is one HTTP call. A url.Values body is sent as a form, a []byte
// as JSON as is, anything else non-nil as JSON.
type Request struct {
	Method, URL string
	Bearer      string
	Consistency string
	Body        any
	// Header holds further request headers (a browser's Cookie, a
	// client's Basic authorization).
	Header http.Header
	// ContentType replaces the body's content type.
	ContentType string
}

// Do sends r and reads the whole answer. Only transport failures are
// errors; the status is the caller's to judge.
func (p *Client) Do(ctx context.Context, r Request) (Answer, error) {
	var (
		body        io.Reader
		contentType string
	)
	switch b := r.Body.(type) {
	case nil:
	case url.Values:
		body, contentType = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case []byte:
		body, contentType = bytes.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Answer{}, err
		}
		body, contentType = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return Answer{}, err
	}
	if r.ContentType != "" {
		contentType = r.ContentType
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.Bearer)
	}
	if r.Consistency != "" {
		req.Header.Set("Consistency-Token", r.Consistency)
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	res, err := p.HTTP.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: res.StatusCode, Token: res.Header.Get("Consistency-Token"), Body: raw, Location: res.Header.Get("Location")}
	if len(res.Header["Set-Cookie"]) > 0 {
		a.Cookies = res.Cookies()
	}
	return a, nil
}

// Expect sends r and returns an error unless the answer has status want.
func (p *Client) Expect(ctx context.Context, r Request, want int) (Answer, error) {
	a, err := p.Do(ctx, r)
	if err != nil {
		return a, fmt.Errorf("%s %s: %w", r.Method, r.URL, err)
	}
	if a.Status != want {
		return a, fmt.Errorf("%s %s = %d %.300s, want %d", r.Method, r.URL, a.Status, a.Body, want)
	}
	return a, nil
}

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Login runs the password grant of tenant, after the write of consistency
// when it is not empty.
func (p *Client) Login(ctx context.Context, tenant, username, password, consistency string) (Tokens, error) {
	a, err := p.Expect(ctx, Request{
		Method: http.MethodPost, URL: p.Query + "/t/" + tenant + "/oauth/token", Consistency: consistency,
		Body: url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}},
	}, http.StatusOK)
	if err != nil {
		return Tokens{}, fmt.Errorf("login %s in %s: %w", username, tenant, err)
	}
	var t Tokens
	return t, a.Decode(&t)
}

// LoginAdmin logs the bootstrap platform admin in.
func (p *Client) LoginAdmin(ctx context.Context) (Tokens, error) {
	return p.Login(ctx, AdminTenant, AdminUsername, AdminPassword, "")
}

// Tenant is a tenant created by CreateTenant.
type Tenant struct {
	ID          string
	AdminID     string
	AdminToken  string // an access token of the tenant's admin
	Consistency string // the token of the last write made for it
}

// CreateTenant creates tenant id with its admin as the platform admin root,
// and logs the admin in (after the creation is projected).
func (p *Client) CreateTenant(ctx context.Context, root, id, adminName, adminPassword string) (Tenant, error) {
	a, err := p.Expect(ctx, Request{
		Method: http.MethodPost, URL: p.Command + "/tenants", Bearer: root,
		Body: map[string]any{"id": id, "name": id, "admin": map[string]any{"username": adminName, "password": adminPassword}},
	}, http.StatusCreated)
	if err != nil {
		return Tenant{}, err
	}
	var created struct {
		AdminID string `json:"admin_user_id"`
	}
	if err := a.Decode(&created); err != nil {
		return Tenant{}, err
	}
	tok, err := p.Login(ctx, id, adminName, adminPassword, a.Token)
	if err != nil {
		return Tenant{}, err
	}
	return Tenant{ID: id, AdminID: created.AdminID, AdminToken: tok.AccessToken, Consistency: a.Token}, nil
}

// DefineRole defines role name of tenant with perms.
func (p *Client) DefineRole(ctx context.Context, t *Tenant, name string, perms []string) error {
	a, err := p.Expect(ctx, Request{
		Method: http.MethodPut, URL: p.Command + "/t/" + t.ID + "/roles/" + name, Bearer: t.AdminToken,
		Body: map[string]any{"permissions": perms},
	}, http.StatusOK)
	if err == nil {
		t.Consistency = a.Token
	}
	return err
}

// RegisterUser registers a user of tenant holding roles and returns its
// id.
func (p *Client) RegisterUser(ctx context.Context, t *Tenant, username, password string, roles []string) (string, error) {
	body := map[string]any{"username": username, "password": password}
	if len(roles) > 0 {
		body["roles"] = roles
	}
	a, err := p.Expect(ctx, Request{
		Method: http.MethodPost, URL: p.Command + "/t/" + t.ID + "/users", Bearer: t.AdminToken, Body: body,
	}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := a.Decode(&u); err != nil {
		return "", err
	}
	t.Consistency = a.Token
	return u.ID, nil
}

// RoleURL is the command service's resource of one user's role.
func (p *Client) RoleURL(tenant, userID, role string) string {
	return p.Command + "/t/" + tenant + "/users/" + userID + "/roles/" + role
}

// Check asks whether userID of tenant holds perm, as bearer.
func (p *Client) Check(ctx context.Context, tenant, bearer, userID, perm, consistency string) (Answer, bool, error) {
	a, err := p.Do(ctx, Request{
		Method: http.MethodPost, URL: p.Query + "/t/" + tenant + "/check", Bearer: bearer, Consistency: consistency,
		Body: CheckBody(userID, perm),
	})
	if err != nil || a.Status != http.StatusOK {
		return a, false, err
	}
	var res struct {
		Allowed bool `json:"allowed"`
	}
	err = a.Decode(&res)
	return a, res.Allowed, err
}

// CheckBody is the JSON body of a check, built without reflection: the
// load generator should not spend its time in encoding/json.
func CheckBody(userID, perm string) []byte {
	return []byte(`{"user_id":"` + userID + `","permission":"` + perm + `"}`)
}

// TokenSubject returns the sub claim of a JWT without verifying it: the
// benchmark reads its own admin's id from a token the platform just
// issued.
func TokenSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("JWT payload: %w", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub == "" {
		return "", fmt.Errorf("JWT payload without sub")
	}
	return claims.Sub, nil
}

// WaitProjected polls the projector's status until no partition of the
// accounts projection has events left to apply.
func (p *Client) WaitProjected(ctx context.Context, root string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		a, err := p.Expect(ctx, Request{Method: http.MethodGet, URL: p.Projector + "/projections", Bearer: root}, http.StatusOK)
		if err != nil {
			return err
		}
		var status struct {
			Items []struct {
				Projection string `json:"projection"`
				LagEvents  int64  `json:"lag_events"`
			} `json:"items"`
		}
		if err := a.Decode(&status); err != nil {
			return err
		}
		var lag int64
		for _, it := range status.Items {
			lag += it.LagEvents
		}
		if lag == 0 && len(status.Items) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projections still %d events behind after %s", lag, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// RegisteredClient is an OpenID Connect client registered by
// RegisterClient.
type RegisteredClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"` // confidential clients only
}

// RegisterClient registers an OpenID Connect client of t through the
// command API (POST /t/{tenant}/clients, body as the API takes it).
func (p *Client) RegisterClient(ctx context.Context, t *Tenant, body map[string]any) (RegisteredClient, error) {
	a, err := p.Expect(ctx, Request{Method: http.MethodPost, URL: p.Command + "/t/" + t.ID + "/clients", Bearer: t.AdminToken, Body: body}, http.StatusCreated)
	if err != nil {
		return RegisteredClient{}, err
	}
	var c RegisteredClient
	if err := a.Decode(&c); err != nil {
		return RegisteredClient{}, err
	}
	t.Consistency = a.Token
	return c, nil
}

// ReadClient waits until the query service reads client id of t, after
// the write of consistency.
func (p *Client) ReadClient(ctx context.Context, t *Tenant, id, consistency string) error {
	_, err := p.Expect(ctx, Request{Method: http.MethodGet, URL: p.Query + "/t/" + t.ID + "/clients/" + id, Bearer: t.AdminToken, Consistency: consistency}, http.StatusOK)
	return err
}

// BasicAuth is the Authorization header of client_secret_basic (RFC 6749
// section 2.3.1: id and secret form-encoded, then joined).
func BasicAuth(id, secret string) http.Header {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}}
}

// TokenHeader returns the alg of a JWT's header, unverified.
func TokenHeader(token string) (alg string, err error) {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", fmt.Errorf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("JWT header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg == "" {
		return "", fmt.Errorf("JWT header without alg")
	}
	return h.Alg, nil
}

// ImportReport is an import's progress (GET /t/{t}/imports/{id}).
type ImportReport struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Total    int    `json:"total"`
	Imported int    `json:"imported"`
	Failed   int    `json:"failed"`
	Errors   []struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// ImportUsers posts lines (JSON lines, one user a line) as an import of
// tenant t and waits, polling every poll, until it is done.
func (p *Client) ImportUsers(ctx context.Context, t *Tenant, lines []byte, poll time.Duration) (ImportReport, error) {
	a, err := p.Expect(ctx, Request{
		Method: http.MethodPost, URL: p.Command + "/t/" + t.ID + "/users:import", Bearer: t.AdminToken,
		Body: lines, ContentType: "application/x-ndjson",
	}, http.StatusAccepted)
	if err != nil {
		return ImportReport{}, err
	}
	var started ImportReport
	if err := a.Decode(&started); err != nil {
		return ImportReport{}, err
	}
	for {
		a, err := p.Do(ctx, Request{Method: http.MethodGet, URL: p.Command + "/t/" + t.ID + "/imports/" + started.ID, Bearer: t.AdminToken})
		switch {
		case err != nil:
			return ImportReport{}, err
		case a.Status == http.StatusServiceUnavailable:
			// The caller's authentication reads the log, which the
			// import keeps busy: ask again.
		case a.Status != http.StatusOK:
			return ImportReport{}, fmt.Errorf("GET import %s = %d %.300s", started.ID, a.Status, a.Body)
		default:
			var rep ImportReport
			if err := a.Decode(&rep); err != nil {
				return ImportReport{}, err
			}
			if rep.Status == "done" {
				return rep, nil
			}
		}
		select {
		case <-ctx.Done():
			return ImportReport{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}
