package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// rotateKeysBody is the optional body of POST /t/{tenant}/keys/rotate.
type rotateKeysBody struct {
	Alg            string `json:"alg,omitempty"`
	OverlapSeconds int64  `json:"overlap_seconds,omitempty"`
}

// rotation is the answer of POST /t/{tenant}/keys/rotate: the new
// access-token key, every new key (that one first) and the retired keys.
type rotation struct {
	KID        string       `json:"kid"`
	Alg        string       `json:"alg"`
	ActiveFrom time.Time    `json:"active_from"`
	Keys       []newKey     `json:"keys"`
	Retired    []retiredKey `json:"retired"`
}

type newKey struct {
	KID        string    `json:"kid"`
	Alg        string    `json:"alg"`
	ActiveFrom time.Time `json:"active_from"`
}

type retiredKey struct {
	KID      string    `json:"kid"`
	RemoveAt time.Time `json:"remove_at"`
}

// rotateKeys serves POST /t/{tenant}/keys/rotate (keys:write): it replaces
// every current key of the tenant.
func (h *handlers) rotateKeys(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b rotateKeysBody
	req, ok := h.begin(w, r, &b, true, func() any { return b })
	if !ok {
		return
	}
	// Out-of-range seconds stay out of range as a duration (the app
	// refuses them) instead of overflowing into range.
	secs := max(min(b.OverlapSeconds, int64(app.MaxKeyOverlap/time.Second)+1), -1)
	res, err := h.app.Commands.RotateKeys.Handle(r.Context(), app.RotateKeys{
		Request: req, Tenant: tenant, Alg: b.Alg, Overlap: time.Duration(secs) * time.Second,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := rotation{Keys: []newKey{}, Retired: []retiredKey{}}
	if rot := res.Rotation; rot != nil {
		out.KID, out.Alg, out.ActiveFrom = rot.KID, rot.Alg, rot.ActiveFrom.UTC()
		for _, k := range rot.Keys {
			out.Keys = append(out.Keys, newKey{KID: k.KID, Alg: k.Alg, ActiveFrom: k.ActiveFrom.UTC()})
		}
		for _, k := range rot.Retired {
			out.Retired = append(out.Retired, retiredKey{KID: k.KID, RemoveAt: k.RemoveAt.UTC()})
		}
	}
	h.done(w, r, res, http.StatusOK, out)
}

// auditKeyRotation is the answer of POST /t/{tenant}/keys/audit/rotate.
type auditKeyRotation struct {
	KID        string    `json:"kid"`
	ActiveFrom time.Time `json:"active_from"`
	Retired    string    `json:"retired,omitempty"`
}

// rotateAuditKey serves POST /t/{tenant}/keys/audit/rotate (keys:write): a
// new audit key signs the tenant's checkpoints from now on.
func (h *handlers) rotateAuditKey(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, true, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.RotateAuditKey.Handle(r.Context(), app.RotateAuditKey{Request: req, Tenant: chi.URLParam(r, "tenant")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := auditKeyRotation{}
	if rot := res.AuditKey; rot != nil {
		out = auditKeyRotation{KID: rot.KID, ActiveFrom: rot.ActiveFrom.UTC(), Retired: rot.Retired}
	}
	h.done(w, r, res, http.StatusOK, out)
}
