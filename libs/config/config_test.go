package config_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
)

func TestReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		read    func(r *config.Reader) any
		want    any
		problem string // "" = no problem expected
	}{
		{"int default", nil, func(r *config.Reader) any { return r.Int("N", 12, 4, 31) }, 12, ""},
		{"int blank is default", map[string]string{"N": "  "}, func(r *config.Reader) any { return r.Int("N", 12, 4, 31) }, 12, ""},
		{"int set", map[string]string{"N": "4"}, func(r *config.Reader) any { return r.Int("N", 12, 4, 31) }, 4, ""},
		{"int not a number", map[string]string{"N": "abc"}, func(r *config.Reader) any { return r.Int("N", 12, 4, 31) }, 12,
			`N: must be an integer between 4 and 31, got "abc"`},
		{"int out of range", map[string]string{"N": "32"}, func(r *config.Reader) any { return r.Int("N", 12, 4, 31) }, 12,
			`N: must be an integer between 4 and 31, got "32"`},
		{"one of", map[string]string{"F": "TEXT"}, func(r *config.Reader) any { return r.OneOf("F", "json", "json", "text") }, "text", ""},
		{"one of bad", map[string]string{"F": "xml"}, func(r *config.Reader) any { return r.OneOf("F", "json", "json", "text") }, "json",
			`F: must be one of json, text, got "xml"`},
		{"bool", map[string]string{"B": "yes"}, func(r *config.Reader) any { return r.Bool("B", false) }, true, ""},
		{"bool bad", map[string]string{"B": "maybe"}, func(r *config.Reader) any { return r.Bool("B", false) }, false,
			`B: must be true or false, got "maybe"`},
		{"duration", map[string]string{"D": "2s"}, func(r *config.Reader) any { return r.Duration("D", time.Second, 0, time.Hour) }, 2 * time.Second, ""},
		{"duration bad", map[string]string{"D": "2"}, func(r *config.Reader) any { return r.Duration("D", time.Second, 0, time.Hour) }, time.Second,
			`D: must be a duration between 0s and 1h0m0s (like "30s" or "15m"), got "2"`},
		{"addr port zero", map[string]string{"A": "127.0.0.1:0"}, func(r *config.Reader) any { return r.Addr("A", "x") }, "127.0.0.1:0", ""},
		{"addr all interfaces", map[string]string{"A": ":8080"}, func(r *config.Reader) any { return r.Addr("A", "x") }, ":8080", ""},
		{"addr no port", map[string]string{"A": "localhost"}, func(r *config.Reader) any { return r.Addr("A", "d") }, "d",
			`A: must be a listen address host:port like 127.0.0.1:8080, got "localhost"`},
		{"addr bad port", map[string]string{"A": "localhost:99999"}, func(r *config.Reader) any { return r.Addr("A", "d") }, "d",
			`A: must have a numeric port between 0 and 65535, got "localhost:99999"`},
		{"url", map[string]string{"U": "postgres://u:pw@db:5432/x"}, func(r *config.Reader) any { return r.URL("U", "", "postgres", "postgresql") },
			"postgres://u:pw@db:5432/x", ""},
		{"url wrong scheme hides password", map[string]string{"U": "mysql://u:hunter2@db/x"},
			func(r *config.Reader) any { return r.URL("U", "d", "postgres", "postgresql") }, "d",
			`U: must be a URL with scheme postgres or postgresql, got "mysql://u:xxxxx@db/x"`},
		{"url no host", map[string]string{"U": "postgres:///x"}, func(r *config.Reader) any { return r.URL("U", "d", "postgres") }, "d",
			`U: must name a host, got "postgres:///x"`},
		{"url list", map[string]string{"L": "nats://a:4222, nats://b:4222"}, func(r *config.Reader) any { return r.URLList("L", "nats", "tls") },
			[]string{"nats://a:4222", "nats://b:4222"}, ""},
		{"required", nil, func(r *config.Reader) any { return r.Required("R", "the thing") }, "",
			`R: required (the thing)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := config.NewReader(config.Map(tt.env))
			got := tt.read(r)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
			err := r.Err()
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.problem {
				t.Fatalf("Err() = %v, want %q", err, tt.problem)
			}
		})
	}
}

func TestReader_ErrListsEveryProblemOnOneLine(t *testing.T) {
	t.Parallel()
	r := config.NewReader(config.Map(map[string]string{"A": "x", "B": "y"}))
	r.Int("A", 1, 0, 9)
	r.Bool("B", false)
	err := r.Err()
	want := `A: must be an integer between 0 and 9, got "x"; B: must be true or false, got "y"`
	if err == nil || err.Error() != want {
		t.Fatalf("Err() = %v, want %q", err, want)
	}
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("Err() = %#v, want *config.Error with 2 problems", err)
	}
}

func TestJoin(t *testing.T) {
	t.Parallel()
	a := &config.Error{Problems: []config.Problem{{"X", "bad"}, {"Y", "bad"}}}
	b := &config.Error{Problems: []config.Problem{{"Y", "bad"}, {"Z", "bad"}}}
	if got, want := config.Join(a, nil, b).Error(), "X: bad; Y: bad; Z: bad"; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
	if err := config.Join(nil, nil); err != nil {
		t.Errorf("Join(nil, nil) = %v, want nil", err)
	}
	other := errors.New("other")
	if err := config.Join(a, other); !errors.Is(err, other) {
		t.Errorf("Join(a, other) lost other: %v", err)
	}
}

func TestHostPortAndRedact(t *testing.T) {
	t.Parallel()
	if got := config.HostPort("postgres://u:pw@db/x", "5432"); got != "db:5432" {
		t.Errorf("HostPort = %q", got)
	}
	if got := config.HostPort("postgres://127.0.0.1:5999/x", "5432"); got != "127.0.0.1:5999" {
		t.Errorf("HostPort = %q", got)
	}
	if got := config.Redact("nats://u:secret@h:4222"); strings.Contains(got, "secret") {
		t.Errorf("Redact kept the password: %q", got)
	}
}

func TestCause(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"errno", refused, "connection refused"},
		{"dns", &net.DNSError{Name: "nohost", Err: "no such host", IsNotFound: true}, "no such host nohost"},
		{"timeout", fmt.Errorf("x: %w", os.ErrDeadlineExceeded), "timed out"},
		{"other", errors.New("boom"), "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := config.Cause(tt.err); got != tt.want {
				t.Errorf("Cause = %q, want %q", got, tt.want)
			}
		})
	}
}
