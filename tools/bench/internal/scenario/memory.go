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
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// memory is a snapshot of what the platform holds. In the all-in-one mode
// the three services, the embedded NATS server and the load generator are
// one process, so the resident size covers them all.
type memory struct {
	rss, hwm   int64 // VmRSS, VmHWM in bytes
	heapInuse  uint64
	goroutines int
	dbBytes    int64 // the read model database
	logBytes   int64 // the JetStream store
}

// snapshotMemory reads the process's resident size and the size of what
// the platform stored, after a garbage collection so the heap figure is
// the live one.
func snapshotMemory(ctx context.Context, p *platform.Platform) memory {
	runtime.GC()
	var m memory
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapInuse, m.goroutines = ms.HeapInuse, runtime.NumGoroutine()
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
	return fmt.Sprintf("VmRSS %s (peak %s), Go heap in use %s, %d goroutines; read model DB %s; JetStream store %s",
		mib(m.rss), mib(m.hwm), mib(int64(m.heapInuse)), m.goroutines, mib(m.dbBytes), mib(m.logBytes))
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// procStatus returns a "kB" field of /proc/self/status in bytes, -1 when
// it cannot be read (not Linux).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
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

// runMemory reports the resident size after seeding the many-tenant data
// set, and after the permission checks filled their caches when they ran.
// The 10,000 tenants × 1,000,000 users cannot be seeded through
// the API in a ten-minute run; the row names what was.
func runMemory(ctx context.Context, e *Env) error {
	d, err := e.seeded(ctx)
	if err != nil {
		return err
	}
	scope := fmt.Sprintf("%d tenants, %d users", len(d.tenants), d.users)
	if d.truncated {
		scope += fmt.Sprintf(" (scaled down from %d × %d by the %s seed budget)", d.plannedTenant, d.plannedUsers, e.opts.SeedBudget)
	}
	e.add(Row{Scenario: "memory after seeding", Ratio: math.NaN(), Notes: scope + "; " + d.afterSeed.String()})
	if d.afterChecks.rss != 0 {
		e.add(Row{Scenario: "memory after checks", Ratio: math.NaN(), Notes: "permission caches filled; " + d.afterChecks.String()})
	}
	return nil
}
