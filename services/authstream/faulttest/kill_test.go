package faulttest_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestKill9_AcknowledgedCommandsSurvive starts the real binary, has
// concurrent clients register users, define roles and assign them, and
// kills the process with SIGKILL after a random number of acknowledged
// commands. After a restart on the same data folder and database, every
// acknowledged command is visible through the query API, and the accounts
// projection equals a rebuild from the log.
func TestKill9_AcknowledgedCommandsSurvive(t *testing.T) {
	start := time.Now()
	bin := mustBuild(t)
	env := map[string]string{
		"DATABASE_URL":                  pgtest.URL(t),
		"AUTH_DATA_DIR":                 t.TempDir(),
		"AUTH_NATS_LISTEN":              mustFreeAddr(t),
		"AUTH_QUERY_ADDR":               mustFreeAddr(t),
		"AUTH_COMMAND_ADDR":             mustFreeAddr(t),
		"AUTH_PROJECTOR_ADDR":           mustFreeAddr(t),
		"AUTH_BCRYPT_COST":              "4",
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
	}
	c := authstreamtest.NewClient(t, authstream.Endpoints{
		Query: "http://" + env["AUTH_QUERY_ADDR"], Command: "http://" + env["AUTH_COMMAND_ADDR"], Projector: "http://" + env["AUTH_PROJECTOR_ADDR"],
	}, nil)
	c.HTTP = &http.Client{Timeout: httpTimeout}
	command := c.Command

	first := mustStartBinary(t, bin, env)
	root := c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	created := c.MustTenant(t, root, authstreamtest.NewTenant{ID: "acme", Name: "Acme", Admin: "ada", Password: "ada password 1"})
	ada := created.Admin.AccessToken

	// The kill comes after a random number of acknowledgements, so that
	// runs hit the process in different states (mid role, mid user, mid
	// assignment, mid projection).
	killAfter := 20 + rand.IntN(61)
	var (
		mu       sync.Mutex
		acks     int
		tokens   = []string{created.Token}
		roles    = map[string]bool{}
		users    = map[string]string{} // username → id
		assigned = map[[2]string]bool{}
		killed   = make(chan struct{})
		kill     sync.Once
	)
	ack := func(a authstreamtest.Response) {
		mu.Lock()
		defer mu.Unlock()
		acks++
		tokens = append(tokens, a.Token())
		if acks >= killAfter {
			kill.Do(func() { close(killed) })
		}
	}
	// step runs one command; false means the worker stops (the process is
	// gone, or it refused, which before the kill is a failure).
	step := func(method, target string, body any) (authstreamtest.Response, bool) {
		a, err := c.Send(authstreamtest.Request{Method: method, URL: target, Bearer: ada, Body: body})
		if err == nil && a.Status < 300 {
			ack(a)
			return a, true
		}
		select {
		case <-killed:
		default:
			t.Errorf("%s %s before the kill: %v %d %s", method, target, err, a.Status, a.Body)
		}
		return a, false
	}

	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				rname, uname := fmt.Sprintf("r-%d-%d", w, i), fmt.Sprintf("u-%d-%d", w, i)
				if _, ok := step(http.MethodPut, command+"/t/acme/roles/"+rname,
					map[string]any{"permissions": []string{"docs:read", "docs:" + rname}}); !ok {
					return
				}
				mu.Lock()
				roles[rname] = true
				mu.Unlock()
				a, ok := step(http.MethodPost, command+"/t/acme/users", map[string]any{"username": uname, "password": "password " + uname})
				if !ok {
					return
				}
				mu.Lock()
				users[uname] = a.Str("id")
				mu.Unlock()
				if _, ok := step(http.MethodPut, command+"/t/acme/users/"+a.Str("id")+"/roles/"+rname, nil); !ok {
					return
				}
				mu.Lock()
				assigned[[2]string{uname, rname}] = true
				mu.Unlock()
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-killed:
	case <-workersDone:
		t.Fatalf("every worker stopped after %d acknowledgements, before the kill at %d", acks, killAfter)
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d acknowledgements after 30s, want %d", acks, killAfter)
	}
	first.kill(t)
	<-workersDone

	mu.Lock()
	acked := acks
	mu.Unlock()
	t.Logf("SIGKILL after %d acknowledged commands (%d roles, %d users, %d assignments)", acked, len(roles), len(users), len(assigned))

	mustStartBinary(t, bin, env)
	ct := latestToken(t, tokens)
	ada = c.Login(t, "acme", "ada", "ada password 1", ct).AccessToken
	gotUsers := mustUsers(t, c, "acme", ada, ct)
	gotRoles := mustRoles(t, c, "acme", ada, ct)

	byName := index(gotUsers)
	roleSet := map[string]bool{}
	for _, r := range gotRoles {
		roleSet[r.Name] = true
	}
	found, lost := 0, 0
	for name := range roles {
		if roleSet[name] {
			found++
		} else {
			lost++
			t.Errorf("acknowledged role %s is missing after the restart", name)
		}
	}
	for name, id := range users {
		if u, ok := byName[name]; ok && u.ID == id {
			found++
		} else {
			lost++
			t.Errorf("acknowledged user %s (%s) is missing after the restart: %+v", name, id, u)
		}
	}
	for k := range assigned {
		if contains(byName[k[0]].Roles, k[1]) {
			found++
		} else {
			lost++
			t.Errorf("acknowledged assignment of %s to %s is missing after the restart", k[1], k[0])
		}
	}
	// The tenant creation is the first acknowledged command.
	if _, ok := byName["ada"]; ok {
		found++
	} else {
		lost++
		t.Error("the tenant's admin is missing after the restart")
	}
	acked++

	root = c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	mustRebuild(t, c, root)
	rebuiltUsers := mustUsers(t, c, "acme", ada, ct)
	rebuiltRoles := mustRoles(t, c, "acme", ada, ct)
	if !reflect.DeepEqual(gotUsers, rebuiltUsers) {
		t.Errorf("users differ from a rebuild:\nlive    %+v\nrebuilt %+v", gotUsers, rebuiltUsers)
	}
	if !reflect.DeepEqual(gotRoles, rebuiltRoles) {
		t.Errorf("roles differ from a rebuild:\nlive    %+v\nrebuilt %+v", gotRoles, rebuiltRoles)
	}
	t.Logf("faults: 1 SIGKILL; %d acknowledged, %d found after restart, %d lost (%d users and %d roles listed, equal to a rebuild); %s",
		acked, found, lost, len(gotUsers), len(gotRoles), time.Since(start).Round(time.Millisecond))
}

// process is a running authstream binary.
type process struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// mustStartBinary starts bin with exactly env (plus PATH and HOME) and
// waits until its three services are ready. The process is killed when the
// test ends if it still runs, and its output is logged if the test failed.
func mustStartBinary(tb testing.TB, bin string, env map[string]string) *process {
	tb.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	w := &lockedWriter{w: p.out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.kill(tb)
		if tb.Failed() {
			tb.Logf("output of process %d:\n%s", cmd.Process.Pid, w.String())
		}
	})
	for _, addr := range []string{env["AUTH_QUERY_ADDR"], env["AUTH_COMMAND_ADDR"], env["AUTH_PROJECTOR_ADDR"]} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			a, err := (&authstreamtest.Client{}).Send(authstreamtest.Request{Method: http.MethodGet, URL: "http://" + addr + "/readyz"})
			if err == nil && a.Status == http.StatusOK {
				break
			}
			select {
			case <-p.done:
				tb.Fatalf("authstream exited before it was ready: %v\n%s", cmd.ProcessState, w.String())
			default:
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s/readyz not ready after 60s\n%s", addr, w.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Ready endpoints answer before the bootstrap admin is projected; the
	// banner comes only once it is, so a first login cannot miss it.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(w.String(), "authstream is ready") {
		if time.Now().After(deadline) {
			tb.Fatalf("no ready banner after 60s\n%s", w.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// kill sends SIGKILL (no drain, no flush, no deferred cleanup) and waits
// for the process to be gone.
func (p *process) kill(tb testing.TB) {
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

// lockedWriter collects the output of a process; reads happen while it may
// still write.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// mustBuild compiles cmd/authstream once per test process.
func mustBuild(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "authstream-fault-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "authstream")
		cmd := exec.Command("go", "build", "-o", build.path, "github.com/authstream/authstream/services/authstream/cmd/authstream")
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		tb.Fatalf("go build cmd/authstream: %v\n%s", build.err, build.out)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}
