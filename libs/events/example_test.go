package events_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The life of one event: built and chained by the writer, parsed, verified
// and decoded by a reader.
func Example() {
	userID := events.DeriveID("example", "user")
	env, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing-admin"}, events.Meta{
		ID:          events.DeriveID("example", "idempotency-key-1", "0"),
		Tenant:      "acme",
		Aggregate:   events.AggregateUser,
		AggregateID: userID,
		OccurredAt:  time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC),
		Actor:       events.Actor{Tenant: "acme", Sub: "admin-1"},
	})
	if err != nil {
		panic(err)
	}
	// The aggregate's last event is version 4; this one is version 5.
	if err := events.Chain("9f2c5e0d7a1b4c3d8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5", 5, &env); err != nil {
		panic(err)
	}
	body, _ := json.Marshal(env) // the message body, published on:
	fmt.Println(events.Subject(env.Tenant, env.Aggregate, env.AggregateID) == "auth.evt.acme.user."+userID)

	got, err := events.ParseEnvelope(body)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.VerifyHash())
	payload, err := events.Decode(got)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s v%d: %+v\n", got.Type, got.Version, payload.(events.UserRoleAssigned))
	// Output:
	// true
	// <nil>
	// user.role_assigned v5: {Role:billing-admin}
}

func ExampleCanonical() {
	b, _ := events.Canonical(json.RawMessage(`{ "b": [1.50, "<&>"], "a": {"y": null, "x": 1e3} }`))
	fmt.Println(string(b))
	// Output: {"a":{"x":1e3,"y":null},"b":[1.50,"<&>"]}
}
