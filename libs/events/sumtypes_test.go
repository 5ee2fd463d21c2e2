package events_test

import (
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// TestSumTypes_matchTheRegistry checks that each registered payload type
// belongs to the sealed set of its aggregate, and to AccountEvent exactly
// when its aggregate lives on AUTH_EVENTS.
func TestSumTypes_matchTheRegistry(t *testing.T) {
	t.Parallel()
	sets := map[string]reflect.Type{
		events.AggregateTenant:    reflect.TypeFor[events.TenantEvent](),
		events.AggregateUser:      reflect.TypeFor[events.UserEvent](),
		events.AggregateRole:      reflect.TypeFor[events.RoleEvent](),
		events.AggregateKeySet:    reflect.TypeFor[events.KeySetEvent](),
		events.AggregateClient:    reflect.TypeFor[events.ClientEvent](),
		events.AggregateSignin:    reflect.TypeFor[events.SigninEvent](),
		events.AggregateSession:   reflect.TypeFor[events.SessionEvent](),
		events.AggregateAuthCode:  reflect.TypeFor[events.AuthCodeEvent](),
		events.AggregateBrowser:   reflect.TypeFor[events.BrowserEvent](),
		events.AggregateWebhook:   reflect.TypeFor[events.WebhookEvent](),
		events.AggregateEmailLink: reflect.TypeFor[events.EmailLinkEvent](),
	}
	account := reflect.TypeFor[events.AccountEvent]()
	for _, typ := range events.Types() {
		s, _ := events.Lookup(typ)
		set, ok := sets[s.Aggregate]
		if !ok {
			t.Errorf("%s: aggregate %q has no sealed set of payloads", s.Type, s.Aggregate)
			continue
		}
		if !s.Payload.Implements(set) {
			t.Errorf("%s: %v is not a %v", s.Type, s.Payload, set)
		}
		for agg, other := range sets {
			if agg != s.Aggregate && s.Payload.Implements(other) {
				t.Errorf("%s: %v is also a %v", s.Type, s.Payload, other)
			}
		}
		if got, want := s.Payload.Implements(account), events.StreamFor(s.Aggregate) == events.StreamEvents; got != want {
			t.Errorf("%s: AccountEvent = %v, want %v", s.Type, got, want)
		}
	}
}
