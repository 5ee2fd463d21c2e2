package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
)

// ClusterOptions shape a multi-process platform.
type ClusterOptions struct {
	// ServerURL is the PostgreSQL server the cluster gets a fresh database
	// on, as in Options.
	ServerURL string
	// BcryptCost is the cost of every password hash the cluster writes.
	BcryptCost int
	// NATSNodes, Commands, Projectors and Queries are how many processes
	// of each kind run.
	NATSNodes, Commands, Projectors, Queries int
	// NATSSync is the nodes' JetStream sync interval: "" syncs every
	// write, as the all-in-one does by default; "2m" is nats-server's own
	// default.
	NATSSync string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// Cluster is the platform as production runs it, on loopback: a NATS
// JetStream cluster and separate command, projector and query processes,
// each started from its own binary, every stream replicated on three nodes.
type Cluster struct {
	// Commands, Projectors and Queries are the processes' base URLs.
	Commands, Projectors, Queries []string
	// NATS are the NATS nodes' client URLs (no authentication).
	NATS []string
	// DatabaseURL is the read model database every process shares.
	DatabaseURL string
	// HTTP is a keep-alive client for all of them.
	HTTP *http.Client
	// KEK is the services' key-encryption keyring (AUTH_KEK); PublicURL
	// their AUTH_PUBLIC_URL; BcryptCost their AUTH_BCRYPT_COST.
	KEK        *events.Keyring
	PublicURL  string
	BcryptCost int

	natsProfiles []string // the NATS nodes' pprof addresses

	dir      string
	dbName   string
	server   string
	procs    []*process
	stopOnce sync.Once
	stopErr  error
}

// process is one started binary and where its output goes.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartCluster builds the binaries (nats-server from the nats-server
// module the workspace pins, the three services from this repository),
// starts the NATS nodes as a cluster, then the services against it, and
// returns once every process answers its health check. The caller must Stop
// the cluster.
func StartCluster(ctx context.Context, o ClusterOptions) (c *Cluster, err error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "authstream_bench_cluster_" + hex.EncodeToString(suffix)
	dbURL, err := withDatabase(o.ServerURL, name)
	if err != nil {
		return nil, err
	}
	if err := readmodel.EnsureDatabase(ctx, dbURL); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		_ = dropDatabase(o.ServerURL, name)
		return nil, err
	}
	c = &Cluster{DatabaseURL: dbURL, HTTP: newHTTPClient(nil), dir: dir, dbName: name, server: o.ServerURL}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()

	fmt.Fprintln(progress, "  building nats-server and the services' binaries")
	bin := filepath.Join(dir, "bin")
	if err := buildBinaries(ctx, bin); err != nil {
		return c, err
	}

	if err := c.startNATS(ctx, bin, o.NATSNodes, o.NATSSync); err != nil {
		return c, err
	}
	fmt.Fprintf(progress, "  NATS cluster of %d nodes ready\n", o.NATSNodes)

	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	kekText := base64.StdEncoding.EncodeToString(kek)
	if c.KEK, err = events.ParseKeyring(kekText); err != nil {
		return c, err
	}
	c.BcryptCost = o.BcryptCost
	ports, err := freePorts(o.Commands + o.Projectors + o.Queries)
	if err != nil {
		return c, err
	}
	c.PublicURL = fmt.Sprintf("http://127.0.0.1:%d", ports[o.Commands+o.Projectors])
	common := []string{
		"AUTH_NATS_URL=" + strings.Join(c.NATS, ","),
		"AUTH_STREAM_REPLICAS=" + strconv.Itoa(min(o.NATSNodes, 3)),
		"DATABASE_URL=" + dbURL,
		"AUTH_KEK=" + kekText,
		"AUTH_PUBLIC_URL=" + c.PublicURL,
		"AUTH_BCRYPT_COST=" + strconv.Itoa(o.BcryptCost),
		"AUTH_LOG_LEVEL=warn",
		"AUTH_LOG_FORMAT=text",
		// The load comes from one loopback address and a few accounts.
		"AUTH_LOGIN_LIMIT_PER_ADDRESS=1000000",
		"AUTH_LOGIN_LIMIT_PER_ACCOUNT=1000000",
	}
	start := func(kind string, i, port int, extra ...string) (string, error) {
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		env := append(append([]string{}, common...), fmt.Sprintf("AUTH_%s_ADDR=127.0.0.1:%d", strings.ToUpper(kind), port))
		env = append(env, extra...)
		if _, err := c.spawn(fmt.Sprintf("%s-%d", kind, i+1), filepath.Join(bin, "authstream-"+kind), env); err != nil {
			return "", err
		}
		return base, nil
	}
	// The first command service creates the streams and the bootstrap
	// admin; the others start once it is ready.
	next := 0
	for i := range o.Commands {
		var extra []string
		if i == 0 {
			extra = []string{"AUTH_BOOTSTRAP_ADMIN_USERNAME=" + AdminUsername, "AUTH_BOOTSTRAP_ADMIN_PASSWORD=" + AdminPassword}
		}
		base, err := start("command", i, ports[next], extra...)
		if err != nil {
			return c, err
		}
		next++
		c.Commands = append(c.Commands, base)
		if i == 0 {
			if err := c.waitHealthy(ctx, base+"/readyz"); err != nil {
				return c, err
			}
		}
	}
	for i := range o.Projectors {
		base, err := start("projector", i, ports[next])
		if err != nil {
			return c, err
		}
		next++
		c.Projectors = append(c.Projectors, base)
	}
	for i := range o.Queries {
		base, err := start("query", i, ports[next])
		if err != nil {
			return c, err
		}
		next++
		c.Queries = append(c.Queries, base)
	}
	for _, group := range [][]string{c.Commands, c.Projectors, c.Queries} {
		for _, base := range group {
			if err := c.waitHealthy(ctx, base+"/readyz"); err != nil {
				return c, err
			}
		}
	}
	// The bootstrap admin is created by an event like any user: ready
	// means it can log in at every query process.
	for i := range c.Queries {
		if err := c.waitAdmin(ctx, c.Client(0, i)); err != nil {
			return c, err
		}
	}
	fmt.Fprintf(progress, "  %d command, %d projector and %d query processes ready\n", o.Commands, o.Projectors, o.Queries)
	return c, nil
}

// Client returns a Client whose command and query calls go to the i-th
// command and query processes (modulo their numbers), sharing the
// cluster's connection pool.
func (c *Cluster) Client(command, query int) *Client {
	return &Client{
		Command: c.Commands[command%len(c.Commands)], Query: c.Queries[query%len(c.Queries)],
		Projector: c.Projectors[0], HTTP: c.HTTP,
	}
}

// Target returns the cluster as the seeding code sees it: its first
// processes of each kind and its first NATS node.
func (c *Cluster) Target() Target {
	return Target{Client: c.Client(0, 0), NATS: c.NATS[0], DatabaseURL: c.DatabaseURL, PublicURL: c.PublicURL, KEK: c.KEK, BcryptCost: c.BcryptCost}
}

// ProcessMemory is the resident size of one of the cluster's processes.
type ProcessMemory struct {
	Name     string // e.g. "query-1", "nats-1"
	RSS, HWM int64  // VmRSS and VmHWM, bytes
}

// Memory returns the resident size of every running process.
func (c *Cluster) Memory() ([]ProcessMemory, error) {
	var out []ProcessMemory
	for _, p := range c.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return nil, fmt.Errorf("memory of %s: %w", p.name, err)
		}
		m := ProcessMemory{Name: p.name}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				m.RSS = kib << 10
			case "VmHWM:":
				m.HWM = kib << 10
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// NATSHeap returns the i-th NATS node's heap profile in the legacy text
// form (debug=1), after a garbage collection.
func (c *Cluster) NATSHeap(ctx context.Context, i int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.natsProfiles[i]+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return nil, err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("nats heap profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nats heap profile: %s", res.Status)
	}
	return io.ReadAll(res.Body)
}

// buildBinaries builds nats-server and the three services into dir, from
// the workspace this program runs in.
func buildBinaries(ctx context.Context, dir string) error {
	root, err := workspaceRoot()
	if err != nil {
		return err
	}
	builds := [][]string{
		{"tools/bench", "github.com/nats-io/nats-server/v2"},
		{".", "./services/command/cmd/authstream-command", "./services/projector/cmd/authstream-projector", "./services/query/cmd/authstream-query"},
	}
	for _, b := range builds {
		args := append([]string{"build", "-o", dir + string(filepath.Separator)}, b[1:]...)
		cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // G204: go build of the repository's own packages, named above
		cmd.Dir = filepath.Join(root, b[0])
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	// go build names the binary of a /v2 module after the element before it.
	if _, err := os.Stat(filepath.Join(dir, "nats-server")); err != nil {
		return fmt.Errorf("nats-server binary: %w", err)
	}
	return nil
}

// workspaceRoot returns the folder of the go.work file the go command uses.
func workspaceRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	work := strings.TrimSpace(string(out))
	if err != nil || work == "" || work == "off" {
		return "", fmt.Errorf("the cluster builds the services from the repository's go.work; go env GOWORK = %q: %v", work, err)
	}
	return filepath.Dir(work), nil
}

// startNATS starts n nodes of one cluster, each syncing every write to
// disk as the all-in-one does, and waits until each reports JetStream
// healthy.
func (c *Cluster) startNATS(ctx context.Context, bin string, n int, sync string) error {
	if sync == "" {
		sync = "always"
	}
	ports, err := freePorts(4 * n)
	if err != nil {
		return err
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[4*i+1]))
	}
	var monitors []string
	for i := range n {
		client, cluster, monitor, prof := ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]
		// prof_port serves the node's Go profiles: the memory scenario
		// reads its heap.
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
prof_port: %d
jetstream {
  store_dir: %q
  sync_interval: %s
}
`, i+1, client, monitor, prof, filepath.Join(c.dir, fmt.Sprintf("nats-%d", i+1)), sync)
		if n > 1 {
			conf += fmt.Sprintf("cluster {\n  name: bench\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", cluster, strings.Join(routes, ", "))
		}
		c.natsProfiles = append(c.natsProfiles, fmt.Sprintf("127.0.0.1:%d", prof))
		path := filepath.Join(c.dir, fmt.Sprintf("nats-%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return err
		}
		if _, err := c.spawn(fmt.Sprintf("nats-%d", i+1), filepath.Join(bin, "nats-server"), nil, "-c", path); err != nil {
			return err
		}
		c.NATS = append(c.NATS, fmt.Sprintf("nats://127.0.0.1:%d", client))
		monitors = append(monitors, fmt.Sprintf("http://127.0.0.1:%d/healthz", monitor))
	}
	for _, m := range monitors {
		if err := c.waitHealthy(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// spawn starts binary with env added to this process's environment, its
// output in a log file of the cluster's folder.
func (c *Cluster) spawn(name, binary string, env []string, args ...string) (*process, error) {
	path := filepath.Join(c.dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...) //nolint:gosec // G204: a binary this cluster just built, with arguments of its own
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: path, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

// waitHealthy polls url until it answers 200, a process exits, or a
// minute passes; the error carries the logs of processes that exited.
func (c *Cluster) waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := c.HTTP.Get(url)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if exited := c.exited(); exited != "" {
			return fmt.Errorf("waiting for %s: %s", url, exited)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after 1m", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitAdmin waits until the bootstrap admin can log in through q.
func (c *Cluster) waitAdmin(ctx context.Context, q *Client) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := q.LoginAdmin(ctx)
		if err == nil {
			return nil
		}
		if exited := c.exited(); exited != "" {
			return fmt.Errorf("waiting for the bootstrap admin: %s", exited)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the bootstrap admin cannot log in at %s after 1m: %w", q.Query, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited names the processes that have stopped, with the end of their
// logs, or returns "" when all run.
func (c *Cluster) exited() string {
	var b strings.Builder
	for _, p := range c.procs {
		select {
		case <-p.done:
			log, _ := os.ReadFile(p.log)
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			fmt.Fprintf(&b, "%s exited (%s):\n%s\n", p.name, p.cmd.ProcessState, bytes.TrimSpace(log))
		default:
		}
	}
	return b.String()
}

// Exited names the processes that have stopped, with the end of their
// logs, or returns "" when every process runs.
func (c *Cluster) Exited() string { return c.exited() }

// Stop stops the services, then the NATS nodes (SIGTERM, then SIGKILL
// after 20 s), and removes the folder and the database. It is idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		// Reverse order: services before the nodes they use.
		for i := len(c.procs) - 1; i >= 0; i-- {
			p := c.procs[i]
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if c.HTTP != nil {
			c.HTTP.CloseIdleConnections()
		}
		c.stopErr = errors.Join(os.RemoveAll(c.dir), dropDatabase(c.server, c.dbName))
	})
	return c.stopErr
}

// freePorts returns n loopback ports that were free a moment ago. The
// processes are told their ports before they start, since the NATS nodes
// must name each other's.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
