package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
)

// ReadyTimeout bounds one run of the readiness function behind /readyz, so
// a hung dependency makes the probe fail instead of hang.
const ReadyTimeout = 2 * time.Second

// Check is one named readiness check. Name is shown to callers of /readyz
// ("postgres", "nats"); the error is only logged.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// NotReadyError names the dependencies that failed a readiness check. /readyz
// shows the names and logs Err, which may hold addresses and driver detail
// that callers must not see.
type NotReadyError struct {
	Dependencies []string
	Err          error
}

func (e *NotReadyError) Error() string {
	msg := "not ready: " + strings.Join(e.Dependencies, ", ")
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// NotReady returns a *NotReadyError for one dependency, for readiness
// functions written by hand.
func NotReady(dependency string, err error) error {
	return &NotReadyError{Dependencies: []string{dependency}, Err: err}
}

// Checks combines checks into a readiness function for Mount. They run
// concurrently; the result is nil when all pass, else a *NotReadyError
// naming the failed ones in the order given.
func Checks(checks ...Check) func(context.Context) error {
	return func(ctx context.Context) error {
		type result struct {
			i   int
			err error
		}
		results := make(chan result, len(checks))
		for i, c := range checks {
			go func() { results <- result{i, c.Check(ctx)} }()
		}
		// A check that ignores ctx is reported as timed out rather than
		// waited for.
		errs := make([]error, len(checks))
		pending := make([]bool, len(checks))
		for i := range pending {
			pending[i] = true
		}
	wait:
		for range checks {
			select {
			case res := <-results:
				errs[res.i], pending[res.i] = res.err, false
			case <-ctx.Done():
				break wait
			}
		}
		for drained := false; !drained; { // results that raced the deadline still count
			select {
			case res := <-results:
				errs[res.i], pending[res.i] = res.err, false
			default:
				drained = true
			}
		}
		var failed []string
		var causes []error
		for i, err := range errs {
			if pending[i] {
				err = ctx.Err()
			}
			if err != nil {
				failed = append(failed, checks[i].Name)
				causes = append(causes, errors.New(checks[i].Name+": "+err.Error()))
			}
		}
		if len(failed) == 0 {
			return nil
		}
		return &NotReadyError{Dependencies: failed, Err: errors.Join(causes...)}
	}
}

// Mount adds the operational endpoints to r:
//   - GET /healthz: 200 {"status":"ok"} while the process serves at all;
//   - GET /readyz: runs ready (nil means always ready) with a ReadyTimeout
//     deadline; 200 {"status":"ok"}, or a 503 problem whose detail and
//     "dependencies" member name what failed (never the error text, which
//     may hold a URL or credentials; that is logged at warn level);
//   - GET /metrics: t.MetricsHandler().
func Mount(r chi.Router, t *telemetry.Telemetry, ready func(ctx context.Context) error) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(t.Logger, ready))
	r.Method(http.MethodGet, "/metrics", t.MetricsHandler())
}

func readyHandler(log *slog.Logger, ready func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if ready == nil {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- ready(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			// Give a check that honours ctx a moment to say which
			// dependency hung; one that ignores ctx must not hold the probe.
			select {
			case err = <-done:
			case <-time.After(100 * time.Millisecond):
				err = context.DeadlineExceeded
			}
		}
		if err == nil {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		log.WarnContext(r.Context(), "not ready", "error", err.Error())

		p := newProblem(http.StatusServiceUnavailable, ReasonNotReady, "Not ready", "not ready")
		p.Instance = r.URL.Path
		if nr, ok := errors.AsType[*NotReadyError](err); ok {
			p.Dependencies = nr.Dependencies
			p.Detail = "not ready: " + strings.Join(nr.Dependencies, ", ")
		} else if errors.Is(err, context.DeadlineExceeded) {
			p.Detail = "readiness check timed out after " + ReadyTimeout.String()
		} else if c := fault.CodeOf(err); c != fault.Internal {
			p.Detail = "not ready: " + fault.MessageOf(err)
		}
		w.Header().Set("Retry-After", "1")
		writeProblem(w, p)
	}
}
