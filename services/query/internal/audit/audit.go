// Package audit is the auditors' read API of the query service: an
// account's, a role's or a user's sign-in history read from JetStream (the
// log, not the projection), each event with its stream sequence, hash and
// prev; the state of an account at any instant by folding its events; the
// holders of a permission at an instant by replaying a tenant; and a
// tenant's whole log as JSON Lines for export.
//
// Events are served exactly as stored: sealed fields (password hashes)
// stay sealed, and nothing here can open them.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/check"
	"github.com/go-chi/chi/v5"
)

// PermAuditRead is the permission every audit route needs (DESIGN
// section 7).
var PermAuditRead = authz.MustParse("audit:read")

// Permissions answers whether a user holds a permission now
// (check.Cache).
type Permissions interface {
	Subject(ctx context.Context, tenant, userID string) (check.Subject, error)
}

// Handler serves the audit API.
type Handler struct {
	store    *eventstore.Store
	perms    Permissions
	verifier *authn.Verifier
	log      *slog.Logger
}

// New returns a Handler reading events from store. verifier checks bearer
// tokens (built with authn.WithUserNotBefore, as for the read API); perms
// decides whether the caller holds audit:read.
func New(store *eventstore.Store, perms Permissions, verifier *authn.Verifier, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: store, perms: perms, verifier: verifier, log: log}
}

// Register adds the audit routes to r, a router already mounted under
// /t/{tenant}.
func (h *Handler) Register(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(h.authenticate)
		r.Get("/users/{id}/history", h.userHistory)
		r.Get("/users/{id}/signins", h.signins)
		r.Get("/roles/{name}/history", h.roleHistory)
		r.Get("/audit/holders", h.holders)
		r.Get("/audit/events", h.tenantEvents)
	})
}

type ctxKey struct{}

var (
	errMissingToken = fault.New(fault.Unauthenticated, httpserver.ReasonMissingToken, "a bearer token is required")
	errForbidden    = fault.New(fault.Forbidden, "missing-permission", "this needs the permission "+PermAuditRead.String())
	errNotFound     = fault.New(fault.NotFound, "unknown-tenant", "no such tenant")
)

// authenticate verifies the bearer token (RFC 6750) against the path's
// tenant, as the read API does, and requires audit:read: every route here
// needs it, so it is checked once.
func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := chi.URLParam(r, "tenant")
		if authz.ValidTenantSlug(tenant) != nil {
			httpserver.WriteError(w, r, h.log, errNotFound)
			return
		}
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			httpserver.WriteError(w, r, h.log, errMissingToken)
			return
		}
		claims, err := h.verifier.Verify(r.Context(), tenant, strings.TrimSpace(tok))
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		// The permission cache, not the token's roles, decides: a role
		// removed since the token was issued no longer counts.
		s, err := h.perms.Subject(r.Context(), tenant, claims.Subject)
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		if !s.Allows(PermAuditRead) {
			httpserver.WriteError(w, r, h.log, errForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tenant)))
	})
}

func tenantOf(r *http.Request) string { return r.Context().Value(ctxKey{}).(string) }

// storeError gives an event store failure its fault code: a stored event
// that does not read back (ErrCorrupt) is Internal and logged loudly,
// anything else an outage to retry.
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, eventstore.ErrCorrupt):
		return fault.Wrap(fault.Internal, fmt.Errorf("%s: %w", what, err), "internal error")
	case errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Unavailable, err, "request abandoned")
	}
	return fault.Wrap(fault.Unavailable, fmt.Errorf("%s: %w", what, err), "event store unavailable, retry shortly")
}

// parseInstant reads an RFC 3339 query parameter; def is its value when
// absent.
func parseInstant(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fault.New(fault.Invalid, "invalid-instant",
			name+" must be an RFC 3339 instant such as 2025-03-14T10:00:00Z")
	}
	return t.UTC(), nil
}

// Formats of the event lists.
const (
	formatJSON  = "json"
	formatJSONL = "jsonl"
)

// ContentTypeJSONL is the media type of the JSON Lines answers.
const ContentTypeJSONL = "application/jsonl"

// HeaderEventCount carries, on event lists, how many events the answer
// holds (exactly, for one aggregate) or at most holds (for a tenant, whose
// count is read before streaming begins): clients size progress bars
// with it.
const HeaderEventCount = "Event-Count"

// formatOf reads ?format=: json (the default) or jsonl.
func formatOf(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", formatJSON:
		return formatJSON, nil
	case formatJSONL:
		return formatJSONL, nil
	default:
		return "", fault.New(fault.Invalid, "invalid-format", "format must be json or jsonl")
	}
}

// validID reports whether s may be an aggregate id (one subject token);
// anything else cannot have events and is answered 404.
func validID(s string) bool { return events.ValidToken(s) }
