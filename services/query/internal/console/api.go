package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The console's calls to the public APIs: the query API (served in
// process, see localTransport), the command API and the projector's
// operator API, each with the admin's access token. An answer that is not
// 2xx becomes an *apiError holding the problem body's title and detail,
// which the pages show as they are: the APIs write them for people.

// maxAnswer bounds an answer the console reads.
const maxAnswer = 8 << 20

// apiError is a refusal of an API.
type apiError struct {
	Status int
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *apiError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	if e.Title != "" {
		return e.Title
	}
	return http.StatusText(e.Status)
}

// call is one API request.
type call struct {
	method, url string
	token       string
	consistency string // a Consistency-Token header to send
	body        any    // JSON, or nil
	contentType string // of body; application/json when empty
	idempotency string // an Idempotency-Key header to send
}

// answer is an API's successful answer.
type answer struct {
	status      int
	consistency string // the Consistency-Token header of the answer
	body        []byte
}

// do sends k and decodes a JSON answer into out (when not nil).
func (c *Console) do(ctx context.Context, k call, out any) (answer, error) {
	var body io.Reader
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return answer{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, k.url, body)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	if k.body != nil {
		ct := k.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if k.consistency != "" {
		req.Header.Set("Consistency-Token", k.consistency)
	}
	if k.idempotency != "" {
		req.Header.Set("Idempotency-Key", k.idempotency)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", k.method, k.url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", k.method, k.url, err)
	}
	if res.StatusCode/100 != 2 {
		e := &apiError{Status: res.StatusCode}
		_ = json.Unmarshal(b, e)
		return answer{}, e
	}
	a := answer{status: res.StatusCode, consistency: res.Header.Get("Consistency-Token"), body: b}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return a, fmt.Errorf("%s %s: decode: %w", k.method, k.url, err)
		}
	}
	return a, nil
}

// client is the console's API client for one request of a signed-in
// admin.
type client struct {
	c           *Console
	s           *session
	consistency string // the page's ?ct=, sent with every query
}

// clientOf returns the API client of a request under /t/{tenant}.
func (c *Console) clientOf(r *http.Request) client {
	return client{c: c, s: sessionOf(r.Context()), consistency: r.URL.Query().Get("ct")}
}

// query reads path of the tenant's query API (GET).
func (k client) query(ctx context.Context, path string, q url.Values, out any) error {
	u := k.c.issuer(k.s.Tenant) + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	_, err := k.c.do(ctx, call{method: http.MethodGet, url: u, token: k.s.Access, consistency: k.consistency}, out)
	return err
}

// command sends a command to path of the command API (under the
// session's tenant, except the platform's /tenants paths) with a JSON
// body, and returns the answer's consistency token.
func (k client) command(ctx context.Context, method, path string, body, out any) (string, error) {
	return k.commandAs(ctx, method, path, "", body, out)
}

// commandAs is command with the body's content type (JSON when empty).
func (k client) commandAs(ctx context.Context, method, path, contentType string, body, out any) (string, error) {
	u := k.c.cfg.CommandURL + "/t/" + k.s.Tenant + path
	if strings.HasPrefix(path, "/tenants") {
		u = k.c.cfg.CommandURL + path
	}
	a, err := k.c.do(ctx, call{method: method, url: u, token: k.s.Access, body: body, contentType: contentType}, out)
	return a.consistency, err
}

// commandOnce is command with an Idempotency-Key: a form sent twice (a
// reload of the page its post answered) gets the first answer again
// instead of acting twice. A key that is not the form's own (see
// formKey) is not sent.
func (k client) commandOnce(ctx context.Context, method, path, key string, body, out any) (string, error) {
	u := k.c.cfg.CommandURL + "/t/" + k.s.Tenant + path
	if !validFormKey(key) {
		key = ""
	}
	a, err := k.c.do(ctx, call{method: method, url: u, token: k.s.Access, body: body, idempotency: key}, out)
	return a.consistency, err
}

// formKey is a form's idempotency key: random, one per rendered form.
func formKey() string { return "console-" + newID() }

// validFormKey reports whether key is one formKey could have made.
func validFormKey(key string) bool {
	rest, ok := strings.CutPrefix(key, "console-")
	if !ok || len(rest) == 0 || len(rest) > 64 {
		return false
	}
	for _, r := range rest {
		if (r < 'A' || r > 'Z') && (r < '2' || r > '7') {
			return false
		}
	}
	return true
}

// operator reads path of the projector's operator API.
func (k client) operator(ctx context.Context, path string, out any) error {
	_, err := k.c.do(ctx, call{method: http.MethodGet, url: k.c.cfg.ProjectorURL + path, token: k.s.Access}, out)
	return err
}
