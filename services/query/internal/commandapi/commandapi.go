// Package commandapi is the query service's client of the command
// service's API (AUTH_COMMAND_URL): the registrations of the hosted
// sign-up page, which the command service decides (ADR 0019).
package commandapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/app"
)

// Timeout bounds one call to the command service: a sign-up hashes one
// password there.
const Timeout = 10 * time.Second

// maxAnswer bounds the answer read back: a problem body is small.
const maxAnswer = 16 << 10

// Client calls the command service at a base URL. It implements
// app.Registrar.
type Client struct {
	base string
	http *http.Client
}

// New returns a client of the command service at base, an absolute http
// or https URL.
func New(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("commandapi: command URL %q is not an absolute http(s) URL", base)
	}
	return &Client{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: Timeout}}, nil
}

// errUnavailable answers a command service that cannot be reached or
// answers what it should not.
var errUnavailable = fault.New(fault.Unavailable, "command-unavailable", "the service cannot register you right now, retry shortly")

// SignUp posts a sign-up to POST /t/{tenant}/users:signup. A 202 is nil;
// a 404 is app.ErrSignupClosed; a 400 is fault.Invalid with the problem's
// detail, which names what is wrong with the address or the password; a
// 429 is fault.TooMany with its Retry-After; anything else is
// fault.Unavailable, its cause in the error's chain.
func (c *Client) SignUp(ctx context.Context, tenant, email, password string) error {
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return fault.Wrap(fault.Internal, err, "internal error")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/t/"+url.PathEscape(tenant)+"/users:signup", bytes.NewReader(body))
	if err != nil {
		return fault.Wrap(fault.Internal, err, "internal error")
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, fmt.Errorf("command service: %w", err), fault.MessageOf(errUnavailable))
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	var problem httpserver.Problem
	_ = json.Unmarshal(answer, &problem)
	switch res.StatusCode {
	case http.StatusAccepted:
		return nil
	case http.StatusNotFound:
		return app.ErrSignupClosed
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		if problem.Detail == "" {
			problem.Detail = "the address or the password is not accepted"
		}
		return fault.New(fault.Invalid, "signup-refused", problem.Detail)
	case http.StatusTooManyRequests:
		wait := time.Minute
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return fault.WithRetryAfter(fault.New(fault.TooMany, "signup-rate-limited", "too many sign-ups, retry in a minute"), wait)
	}
	return fault.Wrap(fault.Unavailable, errors.New("command service answered "+res.Status), fault.MessageOf(errUnavailable))
}
