package spectest_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/httpserver/spectest"
)

func TestCheckRoutes(t *testing.T) {
	t.Parallel()
	ok := func(http.ResponseWriter, *http.Request) {}
	tests := []struct {
		name      string
		specPath  string
		routes    func(chi.Router)
		wantFatal bool
		// wantErrors holds, for each expected Errorf call, substrings its
		// message must contain.
		wantErrors [][]string
	}{
		{
			name:     "router matches spec",
			specPath: "testdata/tiny.yaml",
			routes: func(r chi.Router) {
				r.Get("/items", ok)
				r.Get("/items/{id}", ok)
				r.Delete("/items/{id}", ok)
			},
		},
		{
			name:     "one route missing and one extra",
			specPath: "testdata/tiny.yaml",
			routes: func(r chi.Router) {
				r.Get("/items", ok)
				r.Get("/items/{id}", ok)
				r.Post("/items", ok)
			},
			wantErrors: [][]string{
				{"served but missing from testdata/tiny.yaml", "x-services: [svc]", "POST /items"},
				{"for the svc service but the router does not serve", "DELETE /items/{id}"},
			},
		},
		{
			name:      "spec cannot be loaded",
			specPath:  "testdata/absent.yaml",
			routes:    func(r chi.Router) { r.Get("/items", ok) },
			wantFatal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			router := chi.NewRouter()
			tt.routes(router)
			rec := mustRun(t, func(tb testing.TB) {
				spectest.CheckRoutes(tb, router, tt.specPath, "svc")
			})
			if rec.fatal != tt.wantFatal {
				t.Fatalf("fatal = %v (%q), want %v", rec.fatal, rec.fatalMsg, tt.wantFatal)
			}
			if len(rec.errors) != len(tt.wantErrors) {
				t.Fatalf("got %d errors %q, want %d", len(rec.errors), rec.errors, len(tt.wantErrors))
			}
			for i, wants := range tt.wantErrors {
				for _, want := range wants {
					if !strings.Contains(rec.errors[i], want) {
						t.Errorf("error %d = %q, want it to contain %q", i, rec.errors[i], want)
					}
				}
			}
		})
	}
}

// recorder is a testing.TB that records failures instead of failing the
// test, so CheckRoutes's own failures can be asserted on. Methods it does
// not override panic through the nil embedded TB, which flags a helper
// calling something unexpected.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	fatal    bool
	fatalMsg string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Fatalf records the failure and ends the calling goroutine, as the real
// Fatalf does; mustRun runs the helper in its own goroutine for that reason.
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = true
	r.fatalMsg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// mustRun runs fn with a recorder in a goroutine of its own and returns the
// recorder once fn has returned or called Fatalf.
func mustRun(tb testing.TB, fn func(testing.TB)) *recorder {
	tb.Helper()
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec
}
