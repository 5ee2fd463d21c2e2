package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// The second factors of a user (DESIGN section 11.2): the user with their
// own token, or a caller with users:write; the reset of every factor needs
// users:write.

// enrolTOTP serves POST /t/{tenant}/users/{id}/mfa/totp: 201 with the seed,
// its otpauth:// URI and that URI as a QR code, shown in this answer only.
func (h *handlers) enrolTOTP(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.EnrolTOTP.Handle(r.Context(), app.EnrolTOTP{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.done(w, r, res, http.StatusCreated, map[string]any{"secret": res.TOTP.Secret, "otpauth_uri": res.TOTP.URI, "qr_code": res.TOTP.QRCode})
}

// confirmTOTPBody is the body of POST /t/{tenant}/users/{id}/mfa/totp/verify.
type confirmTOTPBody struct {
	Code string `json:"code"`
}

// confirmTOTP serves POST /t/{tenant}/users/{id}/mfa/totp/verify: 204 once
// the code confirms the enrolment.
func (h *handlers) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	var b confirmTOTPBody
	req, ok := h.begin(w, r, &b, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.ConfirmTOTP.Handle(r.Context(), app.ConfirmTOTP{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"), Code: b.Code,
	})
	h.noContent(w, r, res, err)
}

// generateRecoveryCodes serves POST /t/{tenant}/users/{id}/mfa/recovery_codes:
// 201 with ten new one-time codes, shown in this answer only; they replace
// the previous set.
func (h *handlers) generateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.GenerateRecoveryCodes.Handle(r.Context(), app.GenerateRecoveryCodes{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	codes := res.RecoveryCodes
	if codes == nil {
		codes = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	h.done(w, r, res, http.StatusCreated, map[string]any{"codes": codes})
}

// removeFactor serves DELETE /t/{tenant}/users/{id}/mfa/{factor}.
func (h *handlers) removeFactor(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.RemoveFactor.Handle(r.Context(), app.RemoveFactor{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"), Factor: chi.URLParam(r, "factor"),
	})
	h.noContent(w, r, res, err)
}

// resetFactors serves DELETE /t/{tenant}/users/{id}/mfa: an
// administrator's reset of every factor.
func (h *handlers) resetFactors(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.ResetFactors.Handle(r.Context(), app.ResetFactors{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"),
	})
	h.noContent(w, r, res, err)
}
