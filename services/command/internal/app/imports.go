package app

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// Imports are kept in the memory of the service that runs them (ADR
// 0011): their users' events are the durable part, and an import sent
// again with the same Idempotency-Key writes nothing twice.
const (
	// importsKept bounds the imports a service remembers; the oldest
	// finished ones are forgotten first.
	importsKept = 1000
	// importKeptFor is how long a finished import stays readable.
	importKeptFor = 24 * time.Hour
	// MaxImportErrors is how many line errors an import keeps; Failed
	// counts them all.
	MaxImportErrors = 10000
)

// ImportError is a line that was not imported, and why.
type ImportError struct {
	Line   int
	Reason string
}

// ImportReport is an import's progress (ImportStatus).
type ImportReport struct {
	ID string
	// Status is ImportRunning or ImportDone.
	Status string
	// Total counts the import's lines; Imported and Failed those done so
	// far (a line stored by an earlier run of the same import counts as
	// imported).
	Total, Imported, Failed int
	// Errors are the failed lines in line order, at most MaxImportErrors.
	Errors []ImportError
}

// ErrImportNotFound: the service knows no such import of the tenant.
var ErrImportNotFound = fault.New(fault.NotFound, "import-not-found", "import not found")

// ErrTooManyImports: the service runs as many imports as it remembers.
var ErrTooManyImports = fault.New(fault.Unavailable, "too-many-imports", "too many imports are running; try again later")

// imports runs the imports of a service and remembers them. Its jobs run
// under a context of its own, which close cancels.
type imports struct {
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[importKey]*importJob
}

type importKey struct{ tenant, id string }

func newImports(log *slog.Logger) *imports {
	ctx, cancel := context.WithCancel(context.Background())
	return &imports{log: log, ctx: ctx, cancel: cancel, jobs: map[importKey]*importJob{}}
}

// importJob is one import's progress.
type importJob struct {
	id, tenant       string
	key, fingerprint string
	total            int

	done           atomic.Bool
	stored, failed atomic.Int64

	mu       sync.Mutex
	errors   []ImportError
	finished time.Time
}

// start registers import id of tenant and returns it with started true,
// or returns the import already registered under that id with started
// false when it was started with the same idempotency key and request
// (ErrIdempotencyKeyReused otherwise).
func (im *imports) start(tenant, id, key, fingerprint string, total int) (*importJob, bool, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	k := importKey{tenant, id}
	if j, ok := im.jobs[k]; ok {
		if key == "" || j.key != key || j.fingerprint != fingerprint {
			return nil, false, ErrIdempotencyKeyReused
		}
		return j, false, nil
	}
	im.evict(time.Now())
	if len(im.jobs) >= importsKept {
		return nil, false, ErrTooManyImports
	}
	j := &importJob{id: id, tenant: tenant, key: key, fingerprint: fingerprint, total: total}
	im.jobs[k] = j
	return j, true, nil
}

// evict forgets imports finished longer than importKeptFor ago and, while
// the service remembers importsKept or more, the oldest finished ones.
func (im *imports) evict(now time.Time) {
	var finished []importKey
	for k, j := range im.jobs {
		if !j.done.Load() {
			continue
		}
		if now.Sub(j.finishedAt()) > importKeptFor {
			delete(im.jobs, k)
			continue
		}
		finished = append(finished, k)
	}
	slices.SortFunc(finished, func(a, b importKey) int {
		return im.jobs[a].finishedAt().Compare(im.jobs[b].finishedAt())
	})
	for _, k := range finished {
		if len(im.jobs) < importsKept {
			break
		}
		delete(im.jobs, k)
	}
}

// spawn runs fn under the imports' context.
func (im *imports) spawn(fn func(ctx context.Context)) {
	im.wg.Go(func() { fn(im.ctx) })
}

// close cancels the running imports and waits for them.
func (im *imports) close() {
	im.cancel()
	im.wg.Wait()
}

// report returns import id of tenant's progress.
func (im *imports) report(tenant, id string) (ImportReport, error) {
	im.mu.Lock()
	j, ok := im.jobs[importKey{tenant, id}]
	im.mu.Unlock()
	if !ok {
		return ImportReport{}, ErrImportNotFound
	}
	rep := ImportReport{ID: j.id, Status: ImportRunning, Total: j.total}
	if j.done.Load() {
		rep.Status = ImportDone
	}
	rep.Imported, rep.Failed = int(j.stored.Load()), int(j.failed.Load())
	j.mu.Lock()
	rep.Errors = slices.Clone(j.errors)
	j.mu.Unlock()
	slices.SortFunc(rep.Errors, func(a, b ImportError) int { return cmp.Compare(a.Line, b.Line) })
	return rep, nil
}

func (j *importJob) imported(n int) { j.stored.Add(int64(n)) }

// fail records line as failed with err's message, which is a fault's
// public message (never a secret: the domain's and authn's messages
// name the rule, not the value).
func (j *importJob) fail(line int, err error) {
	j.failed.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.errors) < MaxImportErrors {
		j.errors = append(j.errors, ImportError{Line: line, Reason: fault.MessageOf(err)})
	}
}

func (j *importJob) finish(at time.Time) {
	j.mu.Lock()
	j.finished = at
	j.mu.Unlock()
	j.done.Store(true)
}

func (j *importJob) finishedAt() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.finished
}

// ImportStatus reports import id of tenant to a caller holding users:write
// there: ErrImportNotFound when this service does not know it (another
// replica ran it, or it finished more than a day ago).
func (a *App) ImportStatus(_ context.Context, p domain.Principal, tenant, id string) (ImportReport, error) {
	if err := domain.Authorize(p, tenant, domain.PermUsersWrite); err != nil {
		return ImportReport{}, err
	}
	return a.engine.imports.report(tenant, id)
}

// Close stops the imports the application runs and waits for them.
func (a *App) Close() { a.engine.imports.close() }
