package authclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ConsistencyTokenHeader is the header a command's answer carries and a
// later read may send back, so that authstream answers only once it has
// applied that write (read your own writes).
const ConsistencyTokenHeader = "Consistency-Token"

// CheckRequest asks whether a user holds a permission.
type CheckRequest struct {
	// UserID is the user asked about; empty means the principal itself.
	// Asking about another user needs the users:read permission.
	UserID string
	// Permission is "resource:action", e.g. "invoices:approve".
	Permission string
	// ConsistencyToken, when set, makes authstream answer only after it has
	// applied the write that returned it.
	ConsistencyToken string
}

// Check asks authstream, online, whether a user holds a permission, with
// the principal's own token (POST <base>/t/<tenant>/check). Unlike the
// roles in a token, the answer sees a role unassigned or a user disabled a
// moment ago.
//
// It returns an error wrapping ErrInvalidToken when authstream refuses the
// token (it may have been revoked since it was verified), ErrUnavailable
// when authstream cannot answer now, and another error for a request it
// rejects (a malformed permission, asking about another user without
// users:read).
func (v *Verifier) Check(ctx context.Context, p *Principal, req CheckRequest) (bool, error) {
	if p == nil || p.token == "" {
		return false, errors.New("check: no verified principal")
	}
	if req.UserID == "" {
		req.UserID = p.Subject
	}
	body, err := json.Marshal(struct {
		UserID     string `json:"user_id"`
		Permission string `json:"permission"`
	}{req.UserID, req.Permission})
	if err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	u := v.base + "/t/" + p.Tenant + "/check"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("Authorization", "Bearer "+p.token)
	if req.ConsistencyToken != "" {
		hr.Header.Set(ConsistencyTokenHeader, req.ConsistencyToken)
	}
	resp, err := v.client.Do(hr)
	if err != nil {
		return false, fmt.Errorf("%w: check: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes))
	if err != nil {
		return false, fmt.Errorf("%w: check: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized:
		return false, refuse("authstream refused the token at check")
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return false, fmt.Errorf("%w: check answered status %d", ErrUnavailable, resp.StatusCode)
	default:
		return false, fmt.Errorf("check answered status %d: %s", resp.StatusCode, problemDetail(raw))
	}
	var answer struct {
		Allowed *bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Allowed == nil {
		return false, fmt.Errorf("%w: check answered a body without allowed", ErrUnavailable)
	}
	return *answer.Allowed, nil
}

// problemDetail returns the detail of a problem body, or a placeholder.
func problemDetail(raw []byte) string {
	var p problem
	if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	return "no detail"
}
