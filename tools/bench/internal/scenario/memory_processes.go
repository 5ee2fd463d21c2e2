package scenario

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// serviceMemoryTarget is issue 18's bound on each service's resident size
// at 10,000 tenants × 1,000,000 users, as separate processes.
const serviceMemoryTarget = 300 << 20

// runMemoryProcesses measures what the all-in-one cannot: the resident
// size of each service as its own process, and of the NATS server, at the
// memory scenario's scale. One NATS node (syncing every 2 minutes, as the
// memory scenario's platform) and one command, projector and query process
// each; the data set is written by the bulk seeder, then the query service
// answers permission checks over a thousand of the tenants, which fills its
// caches as production traffic would. The NATS node's heap, read from its
// profiling port, is split by what holds it.
func runMemoryProcesses(ctx context.Context, e *Env) error {
	e.logf("starting separate processes: 1 NATS node, 1 command, 1 projector, 1 query")
	cl, err := platform.StartCluster(ctx, platform.ClusterOptions{
		ServerURL: e.opts.ServerURL, BcryptCost: seedCost,
		NATSNodes: 1, Commands: 1, Projectors: 1, Queries: 1, NATSSync: large.Sync,
		Progress: e.opts.Progress,
	})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Stop() }()
	if err := e.addProcessMemory(ctx, cl, "memory, separate processes, empty", "platform admin only"); err != nil {
		return err
	}

	tenants := e.opts.MemoryTenants
	perTenant := max(e.opts.MemoryUsers/max(tenants, 1), 1)
	plan := seedPlan("m", tenants, perTenant, true)
	res, caughtUp, err := e.bulkSeed(ctx, cl.Target(), plan, "memory-processes-seed")
	if err != nil {
		return err
	}
	if err := e.addProcessMemory(ctx, cl, fmt.Sprintf("memory, separate processes, %d tenants × %d users", len(res.Tenants), perTenant),
		fmt.Sprintf("%d users, %d events; seeded and projected in %s (sync %s)", res.Users, res.Events, caughtUp.Round(time.Second), large.Sync)); err != nil {
		return err
	}

	sample := res.Tenants[:min(len(res.Tenants), 1000)]
	admins, err := adminLogins(ctx, e, cl.Client(0, 0), sample)
	if err != nil {
		return err
	}
	q := cl.Client(0, 0)
	rngs := make([]*rand.Rand, 16)
	for c := range rngs {
		rngs[c] = rand.New(rand.NewPCG(uint64(c), 18))
	}
	checks := loadgen.Run(ctx, e.loadConfig(len(rngs)), func(ctx context.Context, c int) loadgen.Outcome {
		r := rngs[c]
		t := admins[r.IntN(len(admins))]
		u := t.set.ids[r.IntN(len(t.set.ids))]
		a, err := q.Do(ctx, platform.Request{
			Method: http.MethodPost, URL: q.Query + "/t/" + t.set.tenant + "/check", Bearer: t.set.admin.AdminToken,
			Body: platform.CheckBody(u, t.perms[r.IntN(len(t.perms))]),
		})
		return outcome(a, err, http.StatusOK)
	})
	if checks.Errors() > 0 {
		return fmt.Errorf("%d of the checks failed", checks.Errors())
	}
	return e.addProcessMemory(ctx, cl, fmt.Sprintf("memory, separate processes, after checks over %d tenants", len(sample)),
		fmt.Sprintf("%d checks at %.0f/s, 16 clients", checks.OK, checks.Throughput()))
}

// addProcessMemory adds a row with every process's resident size and the
// NATS node's live heap by holder.
func (e *Env) addProcessMemory(ctx context.Context, cl *platform.Cluster, name, notes string) error {
	procs, err := cl.Memory()
	if err != nil {
		return err
	}
	var parts []string
	over := 0
	for _, p := range procs {
		parts = append(parts, fmt.Sprintf("%s %s (peak %s)", p.Name, mib(p.RSS), mib(p.HWM)))
		if !strings.HasPrefix(p.Name, "nats") && p.RSS > serviceMemoryTarget {
			over++
		}
	}
	heap, err := cl.NATSHeap(ctx, 0)
	if err != nil {
		return err
	}
	if e.opts.ProfileDir != "" {
		path := filepath.Join(e.opts.ProfileDir, strings.NewReplacer(" ", "-", ",", "", "×", "x").Replace(name)+"-nats-heap.txt")
		if err := os.WriteFile(path, heap, 0o600); err != nil {
			return err
		}
		e.logf("  NATS heap profile: %s", path)
	}
	holders, total := natsHeapHolders(heap)
	var hs []string
	for _, h := range holders {
		hs = append(hs, fmt.Sprintf("%s %s", h.name, mib(h.bytes)))
	}
	verdict := "every service within 300 MiB"
	if over > 0 {
		verdict = fmt.Sprintf("%d services above 300 MiB", over)
	}
	e.add(Row{Scenario: name, Ratio: math.NaN(), Notes: fmt.Sprintf("%s; VmRSS: %s; %s; NATS live heap %s (sampled): %s",
		notes, strings.Join(parts, ", "), verdict, mib(total), strings.Join(hs, ", "))})
	return nil
}

// natsHolders name what a NATS server's heap allocation is for: the first
// holder with a frame anywhere in the allocation's stack decides, so a
// buffer drawn from a pool for a message block is the block's.
var natsHolders = []struct {
	pattern *regexp.Regexp
	name    string
}{
	{regexp.MustCompile(`storeMsgId|getMsgId|\.ddindex|\.ddmap|\.ddarr`), "de-duplication window"},
	{regexp.MustCompile(`/server/stree\.|/server/avl\.|subjectsTotals|psim|\.fss`), "per-subject index"},
	{regexp.MustCompile(`getMsgBlockBuf|\(\*msgBlock\)\.(loadMsgs|cache|indexCache|tryForceExpireCache|writeMsgRecord)|\(\*cache\)`), "message block caches"},
	{regexp.MustCompile(`\(\*raft\)|\(\*jetStream\)|\(\*stream\)|\(\*consumer\)`), "streams, consumers"},
	{regexp.MustCompile(`nats-server/v2/server\.`), "server, other"},
}

type holder struct {
	name  string
	bytes int64
}

// natsHeapHolders parses a heap profile in the legacy text form (what
// /debug/pprof/heap?debug=1 writes) and charges each record's in-use bytes,
// scaled for sampling as pprof does, to a holder.
func natsHeapHolders(profile []byte) ([]holder, int64) {
	sc := bufio.NewScanner(bytes.NewReader(profile))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	header := regexp.MustCompile(`@ heap/(\d+)`)
	record := regexp.MustCompile(`^(\d+): (\d+) \[\d+: \d+\] @`)
	rate := 512 * 1024.0
	sums := map[string]int64{}
	var total int64
	var objs, size int64
	var frames []string
	flush := func() {
		if objs <= 0 || size <= 0 {
			return
		}
		scale := 1 / (1 - math.Exp(-float64(size)/float64(objs)/rate))
		n := int64(float64(size) * scale)
		total += n
		name := "runtime, other"
	holders:
		for _, h := range natsHolders {
			for _, f := range frames {
				if h.pattern.MatchString(f) {
					name = h.name
					break holders
				}
			}
		}
		sums[name] += n
	}
	for sc.Scan() {
		line := sc.Text()
		if m := header.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "heap profile:") {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil && v > 0 {
				rate = v / 2 // the header gives twice the sampling rate
			}
			continue
		}
		if m := record.FindStringSubmatch(line); m != nil {
			flush()
			objs, _ = strconv.ParseInt(m[1], 10, 64)
			size, _ = strconv.ParseInt(m[2], 10, 64)
			frames = frames[:0]
			continue
		}
		if strings.HasPrefix(line, "#\t0x") {
			if f := strings.Fields(line); len(f) >= 3 {
				frames = append(frames, f[2])
			}
			continue
		}
		if strings.HasPrefix(line, "# runtime.MemStats") {
			break
		}
	}
	flush()
	out := make([]holder, 0, len(sums))
	for name, b := range sums {
		out = append(out, holder{name, b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].bytes > out[j].bytes })
	return out, total
}
