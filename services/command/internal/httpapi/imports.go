package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// MaxImportBytes bounds the body of an import: about two million users
// with bcrypt hashes.
const MaxImportBytes = 512 << 20

// ImportUploadTime bounds the upload of an import's body (512 MiB at
// about 600 KiB/s).
const ImportUploadTime = 15 * time.Minute

// MaxImportLineBytes bounds one line of an import.
const MaxImportLineBytes = 16 << 10

// importContentType is the media type of an import's body: JSON lines.
const importContentType = "application/x-ndjson"

// importLine is one line of an import's body. Members other than these
// (a provider's export carries many) are ignored. "email" and "name" are
// the user's profile when they are strings; null or absent, none.
type importLine struct {
	Username     *string  `json:"username"`
	PasswordHash string   `json:"password_hash"`
	Roles        []string `json:"roles"`
	Status       string   `json:"status"`
	Email        *string  `json:"email"`
	Name         *string  `json:"name"`
}

// importUsers serves POST /t/{tenant}/users:import: the body is read and
// parsed line by line, the import starts, and the answer is 202 with its
// id while it runs.
func (h *handlers) importUsers(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != importContentType {
		h.fail(w, r, fault.New(fault.Invalid, httpserver.ReasonUnsupportedMediaType, "the body must be "+importContentType+": one user a line"))
		return
	}
	// A big file takes longer to upload than the server's read timeout
	// gives a request.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(ImportUploadTime))
	_ = rc.SetWriteDeadline(time.Now().Add(ImportUploadTime + time.Minute))
	lines, sum, err := readImport(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The fingerprint covers the body's digest, which the service keeps in
	// memory only, with the import.
	req, ok := h.begin(w, r, nil, false, func() any { return []string{sum} })
	if !ok {
		return
	}
	res, err := h.app.Commands.ImportUsers.Handle(r.Context(), app.ImportUsers{Request: req, Tenant: tenant, Lines: lines})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/t/"+tenant+"/imports/"+res.ID)
	h.done(w, r, res, http.StatusAccepted, map[string]any{"id": res.ID, "status": app.ImportRunning})
}

// readImport reads an import's lines: each non-blank line is a user, and
// one that is not a JSON object of the import's shape is kept with its
// problem, so that it is reported and the others go on. It returns the
// hex SHA-256 of the body too.
func readImport(body io.Reader) ([]app.ImportLine, string, error) {
	digest := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(body, digest), 64<<10)
	var lines []app.ImportLine
	for n := 1; ; n++ {
		raw, tooLong, err := readLine(br)
		if errors.Is(err, io.EOF) && len(raw) == 0 && !tooLong {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return nil, "", fault.New(fault.Invalid, httpserver.ReasonBodyTooLarge, "the import is larger than 512 MiB: split it")
			}
			return nil, "", fault.Wrap(fault.Invalid, err, "the body could not be read")
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 && !tooLong {
			if errors.Is(err, io.EOF) {
				break
			}
			continue
		}
		lines = append(lines, parseImportLine(n, raw, tooLong))
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return lines, hex.EncodeToString(digest.Sum(nil)), nil
}

// readLine reads up to the next newline; a line longer than
// MaxImportLineBytes is skipped to its end and reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxImportLineBytes {
			tooLong, buf = true, nil
		} else if !tooLong {
			buf = append(buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return buf, tooLong, err
	}
}

// parseImportLine decodes line n. Its problems name the rule broken,
// never the line's content.
func parseImportLine(n int, raw []byte, tooLong bool) app.ImportLine {
	l := app.ImportLine{Line: n}
	if tooLong {
		l.Problem = "line is longer than 16 KiB"
		return l
	}
	var b importLine
	if err := json.Unmarshal(raw, &b); err != nil {
		l.Problem = "line is not a JSON object with a string username and password_hash, a list of string roles, a string status, email and name"
		return l
	}
	if b.Username == nil {
		l.Problem = "username is missing"
		return l
	}
	l.Username, l.PasswordHash, l.Roles, l.Status = *b.Username, b.PasswordHash, b.Roles, b.Status
	if b.Email != nil {
		l.Email = *b.Email
	}
	if b.Name != nil {
		l.Name = *b.Name
	}
	return l
}

// importStatus serves GET /t/{tenant}/imports/{id}.
func (h *handlers) importStatus(w http.ResponseWriter, r *http.Request) {
	p, ok := principalFrom(r)
	if !ok {
		h.fail(w, r, fault.New(fault.Internal, "unauthenticated-route", "internal error"))
		return
	}
	rep, err := h.app.ImportStatus(r.Context(), p, chi.URLParam(r, "tenant"), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	errs := make([]map[string]any, len(rep.Errors))
	for i, e := range rep.Errors {
		errs[i] = map[string]any{"line": e.Line, "reason": e.Reason}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{
		"id": rep.ID, "status": rep.Status, "total": rep.Total,
		"imported": rep.Imported, "failed": rep.Failed, "errors": errs,
	})
}
