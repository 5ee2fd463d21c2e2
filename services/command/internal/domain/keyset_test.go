package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func keyCreated(kid string) events.KeyCreated {
	return events.KeyCreated{KID: kid, Algorithm: "EdDSA", PublicJWK: events.RawJSON(`{"kty":"OKP"}`),
		ActiveFrom: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)}
}

func keyRetired(kid string) events.KeyRetired {
	return events.KeyRetired{KID: kid, RemoveAt: time.Date(2025, 3, 14, 10, 20, 0, 0, time.UTC)}
}

func created(kid string) domain.Pending { return ev(events.TypeKeyCreated, keyCreated(kid)) }
func retired(kid string) domain.Pending { return ev(events.TypeKeyRetired, keyRetired(kid)) }

func mustLoadKeySet(tb testing.TB, tenant string, history ...domain.Pending) *domain.KeySet {
	tb.Helper()
	k, err := domain.LoadKeySet(tenant, mustEnvelopes(tb, events.AggregateKeySet, tenant, history...))
	if err != nil {
		tb.Fatalf("LoadKeySet(%q): %v", tenant, err)
	}
	return k
}

func TestKeySet_Commands(t *testing.T) {
	t.Parallel()
	add := func(kid string) func(*domain.KeySet) error {
		return func(k *domain.KeySet) error { return k.Add(keyCreated(kid)) }
	}
	retire := func(kid string) func(*domain.KeySet) error {
		return func(k *domain.KeySet) error { return k.Retire(keyRetired(kid)) }
	}
	tests := []struct {
		name    string
		history []domain.Pending
		cmd     func(*domain.KeySet) error
		wantErr error
		want    []domain.Pending
		signing []string
	}{
		{name: "add the first key", cmd: add("k1"), want: []domain.Pending{created("k1")}, signing: []string{"k1"}},
		{name: "add a second key", history: []domain.Pending{created("k1")}, cmd: add("k2"), want: []domain.Pending{created("k2")}, signing: []string{"k1", "k2"}},
		{name: "add a known key is a no-op", history: []domain.Pending{created("k1")}, cmd: add("k1"), signing: []string{"k1"}},
		{name: "add a retired key is a no-op", history: []domain.Pending{created("k1"), retired("k1")}, cmd: add("k1")},
		{name: "add without kid", cmd: add(""), wantErr: domain.ErrInvalidKey},
		{name: "retire", history: []domain.Pending{created("k1"), created("k2")}, cmd: retire("k1"), want: []domain.Pending{retired("k1")}, signing: []string{"k2"}},
		{name: "retire twice is a no-op", history: []domain.Pending{created("k1"), retired("k1")}, cmd: retire("k1")},
		{name: "retire a key the log never recorded", history: []domain.Pending{created("k1")}, cmd: retire("k0"), want: []domain.Pending{retired("k0")}, signing: []string{"k1"}},
		{name: "retire without kid", history: []domain.Pending{created("k1")}, cmd: retire(""), wantErr: domain.ErrInvalidKey, signing: []string{"k1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := mustLoadKeySet(t, "acme", tc.history...)
			err := tc.cmd(k)
			checkErr(t, err, tc.wantErr)
			checkRecorded(t, k, len(tc.history), tc.want)
			if got := k.Signing(); !slices.Equal(got, tc.signing) {
				t.Errorf("Signing() = %v, want %v", got, tc.signing)
			}
			// What was recorded folds back to the same state.
			again := mustLoadKeySet(t, "acme", append(slices.Clone(tc.history), tc.want...)...)
			if !slices.Equal(again.Signing(), k.Signing()) || again.Version() != k.Version() {
				t.Errorf("reloaded: signing %v version %d, want %v %d", again.Signing(), again.Version(), k.Signing(), k.Version())
			}
		})
	}
}

func TestKeySet_State(t *testing.T) {
	t.Parallel()
	k := mustLoadKeySet(t, "acme", created("k1"), created("k2"), retired("k1"), created("k3"))
	for kid, want := range map[string][2]bool{"k1": {true, true}, "k2": {true, false}, "k3": {true, false}, "k4": {false, false}} {
		if k.Created(kid) != want[0] || k.Retired(kid) != want[1] {
			t.Errorf("%s: created %v retired %v, want %v", kid, k.Created(kid), k.Retired(kid), want)
		}
	}
	if got := k.Signing(); !slices.Equal(got, []string{"k2", "k3"}) {
		t.Errorf("Signing() = %v", got)
	}
	if k.Kind() != events.AggregateKeySet || k.ID() != "acme" || k.LoadedVersion() != 4 {
		t.Errorf("kind %q id %q loaded %d", k.Kind(), k.ID(), k.LoadedVersion())
	}
}

func TestLoadKeySet_refused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tenant  string
		history func(testing.TB) []events.Envelope
		want    error
	}{
		{name: "malformed tenant", tenant: "Not A Slug", history: func(testing.TB) []events.Envelope { return nil }, want: domain.ErrInvalidTenant},
		{name: "gap in versions", tenant: "acme", history: func(tb testing.TB) []events.Envelope {
			return mustEnvelopes(tb, events.AggregateKeySet, "acme", created("k1"), created("k2"))[1:]
		}, want: domain.ErrCorruptHistory},
		{name: "event of another key set", tenant: "acme", history: func(tb testing.TB) []events.Envelope {
			return mustEnvelopes(tb, events.AggregateKeySet, "globex", created("k1"))
		}, want: domain.ErrCorruptHistory},
		{name: "tenant event in a key set", tenant: "acme", history: func(tb testing.TB) []events.Envelope {
			return mustEnvelopes(tb, events.AggregateKeySet, "acme", tenantCreated)
		}, want: domain.ErrCorruptHistory},
		{name: "key without kid", tenant: "acme", history: func(tb testing.TB) []events.Envelope {
			return mustEnvelopes(tb, events.AggregateKeySet, "acme", created(""))
		}, want: domain.ErrCorruptHistory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := domain.LoadKeySet(tc.tenant, tc.history(t))
			checkErr(t, err, tc.want)
			if k != nil {
				t.Fatal("LoadKeySet returned a key set with its error")
			}
			if tc.want == domain.ErrCorruptHistory && fault.MessageOf(err) != "internal error" {
				t.Errorf("corrupt history shown as %q", fault.MessageOf(err))
			}
		})
	}
}
