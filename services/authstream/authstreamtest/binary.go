package authstreamtest

import (
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/internal/datadir"
	"github.com/authstream/authstream/services/authstream/internal/embedded"
)

// binaryLimit bounds how long the built binary may take to become ready.
const binaryLimit = 60 * time.Second

// BuildBinary compiles the all-in-one binary, the one `make run` starts
// (services/authstream/cmd/authstream), into the test's temporary folder
// and returns its path.
func BuildBinary(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "authstream")
	cmd := exec.Command("go", "build", "-o", path, "github.com/authstream/authstream/services/authstream/cmd/authstream")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build cmd/authstream: %v\n%s", err, out)
	}
	return path
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Process is the built binary running as a child process, and the client
// that talks to it.
type Process struct {
	*Client
	// Env is the environment the process runs with, defaults included: a
	// second StartBinary with it restarts on the same data.
	Env map[string]string

	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
}

// StartBinary starts bin with exactly env (plus PATH and HOME) over the
// defaults of Start (a fresh database and data folder, bcrypt at its
// cheapest), every address on a port that was free (FreeAddr), and waits
// until its three services answer /readyz and it printed its ready
// banner. The client uses those addresses, with the NATS users' passwords
// from the data folder unless AUTH_NATS_URL names another NATS. The
// process is killed when the test ends if it still runs, and its output is
// logged if the test failed.
func StartBinary(tb testing.TB, bin string, env map[string]string) *Process {
	tb.Helper()
	env = maps.Clone(env)
	for k, def := range map[string]func(testing.TB) string{
		"AUTH_QUERY_ADDR": FreeAddr, "AUTH_COMMAND_ADDR": FreeAddr, "AUTH_PROJECTOR_ADDR": FreeAddr, "AUTH_DISPATCHER_ADDR": FreeAddr, "AUTH_NATS_LISTEN": FreeAddr,
		"AUTH_DATA_DIR": func(tb testing.TB) string { return tb.TempDir() }, "DATABASE_URL": pgtest.URL,
		"AUTH_BCRYPT_COST": func(testing.TB) string { return "4" },
	} {
		if env[k] == "" {
			env[k] = def(tb)
		}
		if strings.HasSuffix(env[k], ":0") {
			tb.Fatalf("StartBinary: %s = %q: the client must know the port", k, env[k])
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{Env: env, cmd: cmd, out: &Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Kill(tb)
		if tb.Failed() {
			tb.Logf("output of process %d:\n%s", cmd.Process.Pid, p.out.String())
		}
	})

	ends := authstream.Endpoints{
		Query: "http://" + env["AUTH_QUERY_ADDR"], Command: "http://" + env["AUTH_COMMAND_ADDR"],
		Projector: "http://" + env["AUTH_PROJECTOR_ADDR"], Dispatcher: "http://" + env["AUTH_DISPATCHER_ADDR"], NATS: "nats://" + env["AUTH_NATS_LISTEN"],
	}
	deadline := time.Now().Add(binaryLimit)
	probe := &Client{}
	for _, base := range []string{ends.Query, ends.Command, ends.Projector, ends.Dispatcher} {
		for {
			a, err := probe.Send(Request{Method: http.MethodGet, URL: base + "/readyz"})
			if err == nil && a.Status == http.StatusOK {
				break
			}
			p.mustRun(tb, bin)
			if time.Now().After(deadline) {
				tb.Fatalf("%s/readyz not ready after %s\n%s", base, binaryLimit, p.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Ready endpoints answer before the bootstrap admin is projected; the
	// banner comes only once it is, so a first login cannot miss it.
	for !strings.Contains(p.out.String(), "authstream is ready") {
		p.mustRun(tb, bin)
		if time.Now().After(deadline) {
			tb.Fatalf("no ready banner after %s\n%s", binaryLimit, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var users map[string]string
	if env["AUTH_NATS_URL"] == "" {
		var err error
		if users, err = datadir.ReadNATSUsers(env["AUTH_DATA_DIR"], embedded.Users()); err != nil {
			tb.Fatalf("the NATS users of the data folder: %v", err)
		}
		ends.NATSUsers = users
	}
	p.Client = NewClient(tb, ends, users)
	return p
}

// mustRun fails the test when the process has exited.
func (p *Process) mustRun(tb testing.TB, bin string) {
	tb.Helper()
	select {
	case <-p.done:
		tb.Fatalf("%s exited before it was ready: %v\n%s", bin, p.cmd.ProcessState, p.out.String())
	default:
	}
}

// Output returns what the process printed so far, standard output and
// error together.
func (p *Process) Output() string { return p.out.String() }

// Kill sends SIGKILL (no drain, no flush, no deferred cleanup) and waits
// for the process to be gone.
func (p *Process) Kill(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Errorf("process %d still runs 10s after SIGKILL", p.cmd.Process.Pid)
	}
}
