package scenario

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// memory is a snapshot of what the platform holds. In the all-in-one mode
// the three services, the embedded NATS server and the load generator are
// one process, so the resident size covers them all.
type memory struct {
	rss, hwm   int64  // VmRSS, VmHWM in bytes
	heapAlloc  uint64 // live objects
	heapInuse  uint64 // spans holding live objects
	goroutines int
	dbBytes    int64 // the read model database
	logBytes   int64 // the JetStream store
	byPart     []part
}

// part is the live heap allocated by one component's code.
type part struct {
	name  string
	bytes int64
}

// components name the code a heap allocation is charged to: the first
// (innermost) frame of its stack in one of them decides.
var components = []struct{ prefix, name string }{
	{"github.com/nats-io/nats-server/", "NATS server"},
	{"github.com/authstream/authstream/services/query", "query"},
	{"github.com/authstream/authstream/services/projector", "projector"},
	{"github.com/authstream/authstream/services/command", "command"},
	{"github.com/authstream/authstream/tools/bench", "generator"},
}

// heapParts charges the live heap, as the runtime's heap profile samples
// it (scaled up the way pprof does), to the component whose code made
// each allocation; what no component's code is on the stack of (client
// libraries' own goroutines, the runtime) is "other". The services share
// one process, so this is the closest to a resident size per service the
// all-in-one mode can give.
func heapParts() []part {
	// The profile is as of the last completed collection cycle but one.
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+64)
	n, ok := runtime.MemProfile(recs, true)
	if !ok {
		return nil
	}
	rate := float64(runtime.MemProfileRate)
	sums := map[string]int64{}
	for _, r := range recs[:n] {
		count, size := r.InUseObjects(), r.InUseBytes()
		if count <= 0 || size <= 0 {
			continue
		}
		scale := 1.0
		if rate > 1 {
			scale = 1 / (1 - math.Exp(-float64(size)/float64(count)/rate))
		}
		name := "other"
		frames := runtime.CallersFrames(r.Stack())
	stack:
		for {
			f, more := frames.Next()
			for _, c := range components {
				if strings.HasPrefix(f.Function, c.prefix) {
					name = c.name
					break stack
				}
			}
			if !more {
				break
			}
		}
		sums[name] += int64(float64(size) * scale)
	}
	var out []part
	for _, c := range components {
		out = append(out, part{c.name, sums[c.name]})
	}
	return append(out, part{"other", sums["other"]})
}

// snapshotMemory reads the process's resident size and the size of what
// the platform stored. Garbage collections come first, more than one:
// objects with finalizers (connections and files of a platform stopped
// before) are freed a cycle after they are found unreachable, and what
// they hold with them. Freed memory is returned to the system before
// VmRSS is read, so it counts what the process holds, not what the Go
// runtime kept from earlier peaks (VmHWM keeps the peak).
func snapshotMemory(ctx context.Context, p *platform.Platform) memory {
	var m memory
	runtime.GC()
	m.byPart = heapParts()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapAlloc, m.heapInuse, m.goroutines = ms.HeapAlloc, ms.HeapInuse, runtime.NumGoroutine()
	m.rss, m.hwm = procStatus("VmRSS"), procStatus("VmHWM")
	if conn, err := pgx.Connect(ctx, p.DatabaseURL); err == nil {
		_ = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&m.dbBytes)
		_ = conn.Close(ctx)
	}
	_ = filepath.WalkDir(p.DataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				m.logBytes += info.Size()
			}
		}
		return nil
	})
	return m
}

func (m memory) String() string {
	var parts []string
	for _, p := range m.byPart {
		parts = append(parts, p.name+" "+mib(p.bytes))
	}
	return fmt.Sprintf("VmRSS %s (peak %s); Go heap live %s (sampled, by allocating code: %s), in use %s; %d goroutines; read model DB %s; JetStream store %s",
		//nolint:gosec // G115: heap sizes, far below 2^63
		mib(m.rss), mib(m.hwm), mib(int64(m.heapAlloc)), strings.Join(parts, ", "), mib(int64(m.heapInuse)), m.goroutines, mib(m.dbBytes), mib(m.logBytes))
}

// heapProfile writes the heap profile of the process, named name, when
// profiles are asked for: `go tool pprof -sample_index=inuse_space` says
// what holds the memory.
func (e *Env) heapProfile(name string) {
	if e.opts.ProfileDir == "" {
		return
	}
	path := filepath.Join(e.opts.ProfileDir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		e.logf("heap profile %s: %v", path, err)
		return
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		e.logf("heap profile %s: %v", path, err)
		return
	}
	e.logf("  heap profile: %s", path)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// procStatus returns a "kB" field of /proc/self/status in bytes, -1 when
// it cannot be read (not Linux).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close() //nolint:errcheck // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return -1
		}
		return kb << 10
	}
	return -1
}

// runMemory seeds MemoryTenants tenants and MemoryUsers users in all on a
// platform of its own (nothing else runs in the process then) and reports
// the process's resident size once the projector has applied everything.
// In the all-in-one mode the three services, the embedded NATS server and
// the load generator are one process: the figure covers them all.
func runMemory(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, large)
	if err != nil {
		return err
	}
	tenants := e.opts.MemoryTenants
	perTenant := max(e.opts.MemoryUsers/max(tenants, 1), 1)
	plan := seedPlan("m", tenants, perTenant, false)
	before := snapshotMemory(ctx, p)
	e.add(Row{Scenario: "memory, empty platform", Ratio: math.NaN(), Notes: "platform admin only; " + before.String()})
	res, caughtUp, err := e.bulkSeed(ctx, p.Target(), plan, "memory-seed")
	if err != nil {
		return err
	}
	after := snapshotMemory(ctx, p)
	e.heapProfile("memory-heap")
	e.add(Row{
		Scenario: fmt.Sprintf("memory, %d tenants × %d users", len(res.Tenants), perTenant), Ratio: math.NaN(),
		Notes: fmt.Sprintf("%d users, %d roles a tenant, %d events; seeded and projected in %s (sync %s); %s",
			res.Users, len(plan.Roles), res.Events, caughtUp.Round(time.Second), large.Sync, after.String()),
	})
	return nil
}
