package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authctl/internal/credentials"
)

// Header names of the APIs.
const (
	headerIdempotencyKey   = "Idempotency-Key"
	headerConsistencyToken = "Consistency-Token"
)

// refreshAhead is how long before its expiry a cached access token is
// refreshed rather than sent.
const refreshAhead = 30 * time.Second

// positionMaxAge bounds how long the consistency token of a write is sent
// with later reads of its tenant (see credentials.Store.Position).
const positionMaxAge = 5 * time.Minute

// maxAnswer bounds the answers read from the services.
const maxAnswer = 8 << 20

// APIError is an error answer of a service: a problem body (RFC 9457) or
// an OAuth 2.0 error body (RFC 6749 section 5.2). Its message is one line:
// the status and what the service said ("409 username already taken").
type APIError struct {
	Status  int
	Reason  string // the problem's reason, or the OAuth error code
	Message string
	// Hint, when set, tells how to go on (shown in parentheses).
	Hint string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s", e.Status, e.Message)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// call is one request to a service.
type call struct {
	service string // "query", "command" or "projector", for messages
	base    string
	method  string
	path    string // escaped
	query   url.Values
	json    any        // a JSON body
	form    url.Values // a form body
	// body and contentType are a body sent as it is (an import's lines).
	body        io.Reader
	contentType string
	token       string // the bearer token, if any
	header      http.Header
	out         any     // decodes a 2xx JSON answer when not nil
	raw         *[]byte // receives a 2xx answer's body as it is, when not nil
}

// do sends c and returns the answer's headers, or an *APIError for an error
// answer and a one-line error naming the service when it cannot be reached.
func (in *inv) do(ctx context.Context, c call) (http.Header, error) {
	u := c.base + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var body io.Reader
	contentType := ""
	switch {
	case c.json != nil:
		b, err := json.Marshal(c.json)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case c.form != nil:
		body, contentType = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	case c.body != nil:
		body, contentType = c.body, c.contentType
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s service URL %s: %w", c.service, c.base, err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "authctl")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := in.env.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the %s service at %s: %s", c.service, c.base, config.Cause(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s service at %s: reading the answer: %s", c.service, c.base, config.Cause(err))
	}
	if resp.StatusCode >= 400 {
		return resp.Header, apiError(resp, raw)
	}
	if c.raw != nil {
		*c.raw = raw
	}
	if c.out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, c.out); err != nil {
			return nil, fmt.Errorf("%s service at %s answered %s %s with something that is not the expected JSON: %v",
				c.service, c.base, c.method, c.path, err)
		}
	}
	return resp.Header, nil
}

// apiError reads an error answer.
func apiError(resp *http.Response, raw []byte) error {
	e := &APIError{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var body struct {
			Title       string `json:"title"`
			Detail      string `json:"detail"`
			Reason      string `json:"reason"`
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(raw, &body) == nil {
			switch {
			case body.Error != "" && body.Description != "":
				e.Reason, e.Message = body.Error, body.Error+": "+body.Description
			case body.Error != "":
				e.Reason, e.Message = body.Error, body.Error
			case body.Detail != "":
				e.Reason, e.Message = body.Reason, body.Detail
			case body.Title != "":
				e.Reason, e.Message = body.Reason, strings.ToLower(body.Title)
			}
		}
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	e.Message = oneLine(e.Message)
	return e
}

// oneLine keeps a service's message on one line and of a sane length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// pathf builds a path from a format whose %s verbs are path segments,
// escaping each.
func pathf(format string, segments ...string) string {
	args := make([]any, len(segments))
	for i, s := range segments {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}

// tokenResponse is the answer of the token endpoint.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// errNotLoggedIn says how to log in to tenant.
func (in *inv) errNotLoggedIn(tenant string) error {
	return fmt.Errorf("not logged in to tenant %s at %s; run: authctl login --tenant %s", tenant, in.opts.queryURL, tenant)
}

// token returns a bearer token of tenant from the cached login, refreshing
// it first when it expires within refreshAhead.
func (in *inv) token(ctx context.Context, tenant string) (string, error) {
	l, ok, err := in.creds.Get(in.opts.queryURL, tenant)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", in.errNotLoggedIn(tenant)
	}
	now := in.env.Now()
	if now.Add(refreshAhead).Before(l.ExpiresAt) {
		return l.AccessToken, nil
	}
	expired := fmt.Errorf("the login to tenant %s at %s has expired; run: authctl login --tenant %s", tenant, in.opts.queryURL, tenant)
	if l.RefreshToken == "" {
		return "", expired
	}
	var tr tokenResponse
	_, err = in.do(ctx, call{
		service: "query", base: in.opts.queryURL, method: http.MethodPost, path: pathf("/t/%s/oauth/token", tenant),
		form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.RefreshToken}}, out: &tr,
	})
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status < 500 {
		return "", expired
	}
	if err != nil {
		return "", err
	}
	l.AccessToken, l.TokenType, l.ExpiresAt = tr.AccessToken, tr.TokenType, now.Add(time.Duration(tr.ExpiresIn)*time.Second)
	if tr.RefreshToken != "" {
		l.RefreshToken = tr.RefreshToken
	}
	if err := in.creds.Put(l); err != nil {
		return "", err
	}
	return l.AccessToken, nil
}

// tenant returns the tenant a command acts in: the --tenant flag, or that
// of the most recent login at the query service.
func (in *inv) tenant(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	l, ok, err := in.creds.Latest(in.opts.queryURL)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", usageErrorf("--tenant is required (no login at %s to take it from)", in.opts.queryURL)
	}
	return l.Tenant, nil
}

// command sends a command to the command service as a user of
// authTenant, with the invocation's Idempotency-Key, and remembers the
// answer's consistency token for later reads of writeTenant.
func (in *inv) command(ctx context.Context, authTenant, writeTenant, method, path string, body, out any) error {
	tok, err := in.token(ctx, authTenant)
	if err != nil {
		return err
	}
	h, err := in.do(ctx, call{
		service: "command", base: in.opts.commandURL, method: method, path: path, json: body, token: tok, out: out,
		header: http.Header{headerIdempotencyKey: {in.opts.idempotencyKey}},
	})
	if err != nil {
		var apiErr *APIError
		isAPI := errors.As(err, &apiErr)
		if (isAPI && apiErr.Status == http.StatusServiceUnavailable) || (!isAPI && ctx.Err() == nil) {
			// The command may or may not have been applied: the same key
			// makes a retry safe.
			return fmt.Errorf("%w (retry with --idempotency-key %s)", err, in.opts.idempotencyKey)
		}
		return err
	}
	if ct := h.Get(headerConsistencyToken); ct != "" {
		if err := in.creds.PutPosition(credentials.Position{
			QueryURL: in.opts.queryURL, Tenant: writeTenant, Token: ct, At: in.env.Now(),
		}); err != nil {
			return err
		}
	}
	return nil
}

// read sends a GET to the query service as a user of tenant, waiting for
// the tenant's last write made through authctl to be visible.
func (in *inv) read(ctx context.Context, tenant, path string, query url.Values, out any) error {
	tok, err := in.token(ctx, tenant)
	if err != nil {
		return err
	}
	h, err := in.consistency(tenant)
	if err != nil {
		return err
	}
	_, err = in.do(ctx, call{
		service: "query", base: in.opts.queryURL, method: http.MethodGet, path: path, query: query, token: tok, out: out, header: h,
	})
	return err
}

// consistency returns the Consistency-Token header of tenant's last write,
// if recent.
func (in *inv) consistency(tenant string) (http.Header, error) {
	ct, err := in.creds.Position(in.opts.queryURL, tenant, positionMaxAge, in.env.Now())
	if err != nil || ct == "" {
		return nil, err
	}
	return http.Header{headerConsistencyToken: {ct}}, nil
}

// operator sends a request to the projector as a platform user.
func (in *inv) operator(ctx context.Context, method, path string, body, out any) error {
	tok, err := in.token(ctx, platformTenant)
	if err != nil {
		return err
	}
	_, err = in.do(ctx, call{service: "projector", base: in.opts.projectorURL, method: method, path: path, json: body, token: tok, out: out})
	return err
}

// platformTenant holds the platform admins.
const platformTenant = "platform"

// checkBaseURL accepts an absolute http or https URL.
func checkBaseURL(raw string) error {
	return config.CheckURL(raw, "http", "https")
}
