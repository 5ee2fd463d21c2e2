package httpserver_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/httpserver"
)

func TestListen(t *testing.T) {
	t.Parallel()
	taken, err := httpserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // subtests run after this function returns

	tests := []struct {
		addr, wantErr string
	}{
		{addr: taken.Addr().String(), wantErr: "address " + taken.Addr().String() + " is already in use"},
		{addr: "8080", wantErr: `invalid listen address "8080"`},
		{addr: "127.0.0.1:http-alt-nope", wantErr: `invalid listen address "127.0.0.1:http-alt-nope"`},
		{addr: "127.0.0.1:99999", wantErr: `invalid listen address "127.0.0.1:99999"`},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			ln, err := httpserver.Listen(tt.addr)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded", tt.addr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewServer_Limits(t *testing.T) {
	t.Parallel()
	srv := httpserver.NewServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout != 60*time.Second ||
		srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 128<<10 {
		t.Errorf("limits = %+v", srv)
	}
}

func TestNewServer_OversizedHeaders(t *testing.T) {
	t.Parallel()
	ln, err := httpserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	srv := httpserver.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusNoContent)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(ctx, srv, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	tests := []struct {
		name        string
		padding     int
		status      int
		problemBody bool
	}{
		{"within the limit", httpserver.MaxHeaderBytes - 1024, http.StatusNoContent, false},
		{"just past the limit", httpserver.MaxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge, true},
		{"twice the limit", 2 * httpserver.MaxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge, true},
		// Past what net/http reads, it answers alone, in plain text.
		{"past the hard limit", 2 * httpserver.HardMaxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge, false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/x", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", tt.padding))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Errorf("%s: status = %d, want %d", tt.name, res.StatusCode, tt.status)
		}
		isProblem := res.Header.Get("Content-Type") == httpserver.ProblemContentType &&
			strings.Contains(string(body), `"status":431`)
		if isProblem != tt.problemBody {
			t.Errorf("%s: problem body = %v, want %v (%s: %.80s)", tt.name, isProblem, tt.problemBody, res.Header.Get("Content-Type"), body)
		}
	}
	if reached != 1 {
		t.Errorf("handler reached %d times, want once", reached)
	}
}

func TestServe_DrainsOnCancel(t *testing.T) {
	t.Parallel()
	ln, err := httpserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	srv := httpserver.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserver.Serve(ctx, srv, ln) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel() // shutdown begins with a request in flight
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request got %q, want it to finish", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after cancel", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("server still accepts after Serve returned")
	}
}
