package readmodel_test

import (
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/readmodel"
)

func TestChanges_roundTrip(t *testing.T) {
	t.Parallel()
	tests := []readmodel.Changes{
		{Projection: "accounts", Partition: 3, From: 10, To: 12, Items: []readmodel.Changed{
			{Tenant: "acme", Aggregate: "user", ID: "u1"}, {Tenant: "globex"},
		}},
		{Projection: "accounts", Partition: 0, From: 0, To: 1},
	}
	for _, want := range tests {
		got, err := readmodel.ParseChanges(want.String())
		if err != nil {
			t.Fatalf("ParseChanges(%q): %v", want.String(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseChanges(%q) = %+v, want %+v", want.String(), got, want)
		}
	}
}

func TestParseChanges_refuses(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{
		"", "accounts:1:2:3", ":1:2:3:acme", "accounts:x:2:3:acme", "accounts:-1:2:3:acme",
		"accounts:1:3:3:acme", "accounts:1:4:3:acme", "accounts:1:2:3:acme.user",
		"accounts:1:2:3:acme.user.u1.x", "accounts:1:2:3:ac*me", "accounts:1:2:3:acme.us>er.u1",
	} {
		if _, err := readmodel.ParseChanges(payload); err == nil {
			t.Errorf("ParseChanges(%q) = nil error, want a refusal", payload)
		}
	}
}
