package rebuild_test

import (
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// harness is a running projector over tenants of one partition, with the
// history it was given.
type harness struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	d       runner.Deps
	g       *projectortest.Gen
	tenants []string
	all     []events.Envelope // every event published, in order
}

func newHarness(t *testing.T, first string, n int) *harness {
	t.Helper()
	h := &harness{pool: projectortest.MustPool(t), js: projectortest.MustJetStream(t), tenants: projectortest.TenantsIn(first, first, n)}
	h.d = projectortest.Deps(t, h.pool, h.js)
	h.d.Log = projectortest.TestLog(t)
	projectortest.StartSupervisor(t, h.d)
	h.g = projectortest.NewGen(91, h.tenants...)
	h.publish(t, 300)
	projectortest.WaitCaughtUp(t, h.pool, h.js, live.Key())
	return h
}

// publish appends n more events of the tenants.
func (h *harness) publish(t *testing.T, n int) {
	t.Helper()
	envs := h.g.Many(t, n)
	h.all = append(h.all, envs...)
	projectortest.Publish(t, h.js, envs...)
}

func (h *harness) waitReleased(t *testing.T, tenant string) {
	t.Helper()
	projectortest.WaitFor(t, tenant+" released", 10*time.Second, func() bool {
		return projectortest.Count(t, h.pool, `SELECT count(*) FROM projection_tenant_quarantine WHERE tenant = $1`, tenant) == 0
	})
	projectortest.WaitCaughtUp(t, h.pool, h.js, live.Key())
}

// mustEqualReplay compares every tenant's live rows with a replay of its
// events into schema ref.
func (h *harness) mustEqualReplay(t *testing.T, ref string) {
	t.Helper()
	projectortest.Reference(t, h.pool, ref, h.all)
	projectortest.MustEqualDumps(t, projectortest.Dump(t, h.pool, ref), projectortest.Dump(t, h.pool, live.Schema))
}
