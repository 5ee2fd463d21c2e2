package domain_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
)

func TestEndpoint_SubjectsAndWants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		types    []string
		subjects []string
		wants    map[string]bool
	}{
		{[]string{"*"}, []string{"auth.evt.acme.>"}, map[string]bool{"user.registered": true, "role.deleted": true}},
		{[]string{"role.defined", "user.*"}, []string{"auth.evt.acme.role.>", "auth.evt.acme.user.>"},
			map[string]bool{"user.registered": true, "role.defined": true, "role.deleted": false, "tenant.created": false}},
		{[]string{"user.registered", "user.role_assigned"}, []string{"auth.evt.acme.user.>"},
			map[string]bool{"user.registered": true, "user.deleted": false}},
	}
	for _, tt := range tests {
		e := domain.Endpoint{Key: domain.Key{Tenant: "acme", ID: "w"}, Config: events.WebhookConfig{EventTypes: tt.types}}
		if got := e.Subjects(); !slices.Equal(got, tt.subjects) {
			t.Errorf("%v: subjects %v, want %v", tt.types, got, tt.subjects)
		}
		for typ, want := range tt.wants {
			if e.Wants(typ) != want {
				t.Errorf("%v: Wants(%s) = %v", tt.types, typ, !want)
			}
		}
	}
}

func TestSign_StandardWebhooks(t *testing.T) {
	t.Parallel()
	// The example of the Standard Webhooks specification.
	key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	got := domain.Sign([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	mac := hmac.New(sha256.New, []byte("k2"))
	mac.Write([]byte("id.5.b"))
	two := domain.Sign([][]byte{key, []byte("k2")}, "id", 5, []byte("b"))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); two[len(two)-len(want):] != want {
		t.Fatalf("two keys: %s", two)
	}
}

func TestBackoff_Delay(t *testing.T) {
	t.Parallel()
	b := domain.Backoff{First: time.Second, Max: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if hi := b.Delay(n, func() float64 { return 0.999999 }); hi > want || hi < want*9/10 {
			t.Errorf("Delay(%d) high = %v, want about %v", n, hi, want)
		}
		if lo := b.Delay(n, func() float64 { return 0 }); lo != want/2 {
			t.Errorf("Delay(%d) low = %v, want %v", n, lo, want/2)
		}
	}
}

func TestEndpoint_SecretsDuringOverlap(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := domain.Endpoint{Secret: events.Sealed{KID: "new", Ciphertext: []byte{1}}, Previous: events.Sealed{KID: "old", Ciphertext: []byte{2}}, PreviousUntil: now.Add(time.Hour)}
	if n := len(e.Secrets(now)); n != 2 {
		t.Fatalf("%d secrets during the overlap", n)
	}
	if n := len(e.Secrets(now.Add(time.Hour))); n != 1 {
		t.Fatalf("%d secrets after the overlap", n)
	}
}
