package postgres

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
)

// changeLog holds the change sets of the partitions an Applier applies.
// Only the active generation's are kept: a rebuild's batches are never
// announced.
type changeLog struct {
	mu   sync.Mutex
	sets map[changeKey]*changeSet
}

// changeKey names a partition of a target.
type changeKey struct {
	target    string
	partition int
}

// changeSet is what a partition's batches changed since its last
// announcement. aggregates and tenants are sets of items; aggregates is
// dropped when it outgrows a payload (the tenants then stand for them), and
// both when the tenants do too (overflow: the partition as a whole).
type changeSet struct {
	from, to       uint64
	aggregates     map[readmodel.Changed]struct{}
	aggregateBytes int
	tenants        map[readmodel.Changed]struct{}
	tenantBytes    int
	overflow       bool
}

// note records the aggregates of applied, the events that moved a
// partition's checkpoint from from to to, and the tenants quarantined on
// the way (as whole tenants: their rows are no longer current, whatever
// their events touched). A set that does not end at from
// (a batch whose commit failed, a partition taken over) is started again:
// the announcement then covers only what follows from, and the query
// service, which knows what it saw last, falls back to the whole
// partition if that leaves a gap.
func (l *changeLog) note(t Target, partition int, from, to uint64, applied []eventstore.Stored, quarantined []string) {
	k := changeKey{t.Key(), partition}
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.sets[k]
	if cs == nil || cs.to != from {
		cs = &changeSet{from: from, aggregates: map[readmodel.Changed]struct{}{}, tenants: map[readmodel.Changed]struct{}{}}
		l.sets[k] = cs
	}
	cs.to = to
	if cs.overflow {
		return
	}
	items := make([]readmodel.Changed, 0, len(applied)+len(quarantined))
	for _, ev := range applied {
		e := ev.Envelope
		items = append(items, readmodel.Changed{Tenant: e.Tenant, Aggregate: e.Aggregate, ID: e.AggregateID})
	}
	for _, t := range quarantined {
		items = append(items, readmodel.Changed{Tenant: t})
	}
	for _, item := range items {
		if cs.aggregates != nil {
			if _, ok := cs.aggregates[item]; !ok {
				cs.aggregates[item] = struct{}{}
				cs.aggregateBytes += len(item.String()) + 1
				if cs.aggregateBytes > readmodel.MaxChangesPayload {
					cs.aggregates = nil
				}
			}
		}
		tenant := readmodel.Changed{Tenant: item.Tenant}
		if _, ok := cs.tenants[tenant]; !ok {
			cs.tenants[tenant] = struct{}{}
			cs.tenantBytes += len(tenant.Tenant) + 1
			if cs.tenantBytes > readmodel.MaxChangesPayload {
				cs.overflow, cs.aggregates, cs.tenants = true, nil, nil
				return
			}
		}
	}
}

// take removes the partition's change set and returns its payload if it
// ends at seq and fits.
func (l *changeLog) take(t Target, partition int, seq uint64) (string, bool) {
	k := changeKey{t.Key(), partition}
	l.mu.Lock()
	cs := l.sets[k]
	delete(l.sets, k)
	l.mu.Unlock()
	if cs == nil || cs.to != seq || cs.overflow {
		return "", false
	}
	items := cs.aggregates
	if items == nil {
		items = cs.tenants
	}
	// Sorted by their payload form, so that a payload is the same
	// whatever the order the events came in.
	sorted := slices.SortedFunc(maps.Keys(items), func(a, b readmodel.Changed) int {
		return strings.Compare(a.String(), b.String())
	})
	return readmodel.Changes{Projection: t.Projection, Partition: partition, From: cs.from, To: cs.to, Items: sorted}.String(), true
}
