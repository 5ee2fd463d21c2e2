package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// The aggregates are what the application appends through.
var (
	_ domain.Aggregate = (*domain.Tenant)(nil)
	_ domain.Aggregate = (*domain.User)(nil)
	_ domain.Aggregate = (*domain.Role)(nil)
	_ domain.Aggregate = (*domain.KeySet)(nil)
	_ domain.Aggregate = (*domain.Client)(nil)
	_ domain.Aggregate = (*domain.Webhook)(nil)
)

// ev is a recorded event, for histories and expectations.
func ev(typ string, data any) domain.Pending { return domain.Pending{Type: typ, Data: data} }

// mustEnvelopes turns recorded events into the history an event store would
// return: JSON data, schema 1, consecutive versions from 1. Going through
// JSON also checks that every payload the domain records decodes back to
// the same value.
func mustEnvelopes(tb testing.TB, kind, id string, pending ...domain.Pending) []events.Envelope {
	tb.Helper()
	out := make([]events.Envelope, len(pending))
	for i, p := range pending {
		data, err := json.Marshal(p.Data)
		if err != nil {
			tb.Fatalf("marshal %s: %v", p.Type, err)
		}
		out[i] = events.Envelope{
			Type:        p.Type,
			Schema:      1,
			Tenant:      "acme",
			Aggregate:   kind,
			AggregateID: id,
			Version:     uint64(i + 1),
			Data:        data,
		}
	}
	return out
}

func mustLoadTenant(tb testing.TB, id string, history ...domain.Pending) *domain.Tenant {
	tb.Helper()
	t, err := domain.LoadTenant(id, mustEnvelopes(tb, events.AggregateTenant, id, history...))
	if err != nil {
		tb.Fatalf("LoadTenant(%q): %v", id, err)
	}
	return t
}

func mustLoadUser(tb testing.TB, id string, history ...domain.Pending) *domain.User {
	tb.Helper()
	u, err := domain.LoadUser(id, mustEnvelopes(tb, events.AggregateUser, id, history...))
	if err != nil {
		tb.Fatalf("LoadUser(%q): %v", id, err)
	}
	return u
}

func mustLoadRole(tb testing.TB, name string, history ...domain.Pending) *domain.Role {
	tb.Helper()
	r, err := domain.LoadRole(name, mustEnvelopes(tb, events.AggregateRole, name, history...))
	if err != nil {
		tb.Fatalf("LoadRole(%q): %v", name, err)
	}
	return r
}

// checkErr fails unless err matches want (nil meaning success), and unless a
// failed command's error is a coded fault with a reason.
func checkErr(tb testing.TB, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("error = %v, want nil", err)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("error = %v (reason %q), want %v", err, fault.ReasonOf(err), want)
	case want != nil && (fault.CodeOf(err) != fault.CodeOf(want) || fault.ReasonOf(err) != fault.ReasonOf(want)):
		tb.Fatalf("error %v has code %s reason %q, want %s %q", err, fault.CodeOf(err), fault.ReasonOf(err), fault.CodeOf(want), fault.ReasonOf(want))
	}
}

// checkRecorded checks what a command recorded and the versions that follow
// from it.
func checkRecorded(tb testing.TB, a domain.Aggregate, loaded int, want []domain.Pending) {
	tb.Helper()
	if got := a.Pending(); !reflect.DeepEqual(got, want) {
		tb.Fatalf("Pending() = %#v\nwant %#v", got, want)
	}
	if got := a.LoadedVersion(); got != uint64(loaded) {
		tb.Fatalf("LoadedVersion() = %d, want %d", got, loaded)
	}
	if got, wantV := a.Version(), uint64(loaded+len(want)); got != wantV {
		tb.Fatalf("Version() = %d, want %d", got, wantV)
	}
}

// sealed returns a stand-in sealed credential; the domain never opens it.
// name is a username as Register takes it, with legacy clear members
// standing in for sealed ones (the domain never opens them) and a
// stand-in claim.
func name(username, key string) domain.Name {
	return domain.Name{
		Username: username, Key: key,
		Sealed: events.LegacyPersonal(username), SealedKey: events.LegacyPersonal(key), Claim: "claim-" + key,
	}
}

// show is a personal member as a string, to compare.
func show(p events.Personal) string {
	if v, ok := p.Legacy(); ok {
		return v
	}
	if p.IsZero() {
		return ""
	}
	return string(p.Nonce) + ":" + string(p.Ciphertext)
}

// claimOf is the username claim a user holds, as a string.
func claimOf(u *domain.User) string {
	kind, value := u.UsernameClaim()
	if value == "" {
		return ""
	}
	return kind + ":" + value
}

func sealed(n byte) events.Sealed {
	return events.Sealed{KID: "k1", Nonce: []byte{n, n}, Ciphertext: []byte{n, 0xff, n}}
}
