package queries

import (
	"net/http"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

// CheckRequest is the body of POST /check.
type CheckRequest struct {
	UserID     string `json:"user_id"`
	Permission string `json:"permission"`
}

// CheckResponse is its answer.
type CheckResponse struct {
	Allowed bool `json:"allowed"`
}

// check is POST /check: may user_id do permission? A caller checks itself
// freely; checking another user needs users:read. Unknown and disabled
// users are denied everything.
func (h *Handler) check(w http.ResponseWriter, r *http.Request) {
	var req CheckRequest
	if err := httpserver.DecodeJSON(w, r, &req); err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	perm, err := authz.Parse(req.Permission)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	if req.UserID == "" || !events.ValidToken(req.UserID) {
		httpserver.WriteError(w, r, h.log, fault.New(fault.Invalid, "invalid-user-id", "user_id is required and must be a user id"))
		return
	}
	c := callerOf(r)
	if req.UserID != c.claims.Subject {
		if err := h.require(r, permUsersRead); err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
	}
	allowed, err := h.checks.Allows(r.Context(), c.tenant, req.UserID, perm)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, CheckResponse{Allowed: allowed})
}
