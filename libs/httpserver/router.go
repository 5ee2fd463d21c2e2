package httpserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
)

// NewRouter returns a chi router with the middleware every service wants, in
// the order that makes them cooperate: telemetry outermost (so a recovered
// panic is measured as the 500 it became), then Recoverer; and problem
// bodies for unknown routes and methods.
func NewRouter(t *telemetry.Telemetry) chi.Router {
	r := chi.NewRouter()
	r.Use(t.HTTPMiddleware(), Recoverer(t.Logger))
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	return r
}

// NotFound answers a request no route matched with a 404 problem. Install it
// with chi's Router.NotFound.
func NotFound(w http.ResponseWriter, r *http.Request) {
	p := newProblem(http.StatusNotFound, ReasonRouteNotFound, "Not found", "no route for "+r.Method+" "+r.URL.Path)
	p.Instance = r.URL.Path
	writeProblem(w, p)
}

// methods are the methods tried to fill the Allow header of a 405.
var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions,
}

// MethodNotAllowed answers a known path asked with the wrong method with a
// 405 problem and the Allow header RFC 9110 requires (chi fills it only for
// its default handler, so it is recomputed from the router here). Install it
// with chi's Router.MethodNotAllowed.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.Routes != nil {
		for _, m := range methods {
			if rctx.Routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	p := newProblem(http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "Method not allowed",
		"method "+r.Method+" is not allowed on "+r.URL.Path)
	p.Instance = r.URL.Path
	writeProblem(w, p)
}

// Recoverer returns middleware that turns a panic in a handler into a 500
// problem ("internal error") and logs the panic value and stack at error
// level, with the method and route pattern but never the request body,
// headers or query. http.ErrAbortHandler is re-raised: it is how a handler
// asks net/http to abort the response. When the handler had already started
// the response, the connection is aborted instead of appending a problem to
// a partial body.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tw := &trackingWriter{ResponseWriter: w}
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					append(requestAttrs(r), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))...)
				if tw.wrote {
					panic(http.ErrAbortHandler)
				}
				WriteProblem(tw, http.StatusInternalServerError, "", titles[fault.Internal], "internal error")
			}()
			next.ServeHTTP(tw, r)
		})
	}
}

// trackingWriter remembers whether the response has started.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	if code >= 200 {
		t.wrote = true
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client when the underlying writer can.
func (t *trackingWriter) Flush() {
	t.wrote = true
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// requestAttrs describe a request in logs by method and route pattern: no
// query, headers or body, which may hold secrets.
func requestAttrs(r *http.Request) []any {
	if r == nil {
		return nil
	}
	route := telemetry.UnmatchedRoute
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
		route = rctx.RoutePattern()
	}
	return []any{"method", r.Method, "route", route, "path", r.URL.Path}
}

func ctxOf(r *http.Request) context.Context {
	if r == nil {
		return context.Background()
	}
	return r.Context()
}
