package events_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

func TestSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		aggregate, subject, stream string
	}{
		{events.AggregateTenant, "auth.evt.acme.tenant.x1", events.StreamEvents},
		{events.AggregateUser, "auth.evt.acme.user.x1", events.StreamEvents},
		{events.AggregateRole, "auth.evt.acme.role.x1", events.StreamEvents},
		{events.AggregateKeySet, "auth.evt.acme.keyset.x1", events.StreamEvents},
		{events.AggregateClient, "auth.evt.acme.client.x1", events.StreamEvents},
		{events.AggregateSignin, "auth.act.acme.signin.x1", events.StreamActivity},
		{events.AggregateSession, "auth.act.acme.session.x1", events.StreamActivity},
		{events.AggregateAuthCode, "auth.act.acme.authcode.x1", events.StreamActivity},
		{events.AggregateBrowser, "auth.act.acme.browser.x1", events.StreamActivity},
		{"invoice", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.aggregate, func(t *testing.T) {
			t.Parallel()
			if got := events.Subject("acme", tt.aggregate, "x1"); got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
			if got := events.StreamFor(tt.aggregate); got != tt.stream {
				t.Errorf("StreamFor = %q, want %q", got, tt.stream)
			}
			want := ""
			if tt.subject != "" {
				want = tt.subject + ".15" // Partition("acme")
			}
			if got := events.StoredSubject("acme", tt.aggregate, "x1"); got != want {
				t.Errorf("StoredSubject = %q, want %q", got, want)
			}
		})
	}
}

// fnv1a32 is FNV-1a written out from its definition, to check Partition
// against something other than hash/fnv.
func fnv1a32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestPartition(t *testing.T) {
	t.Parallel()
	// Fixed values: the server computes the same, so these may never change.
	fixed := map[string]int{"acme": 15, "globex": 14, "platform": 2, "initech": 1, "a": 12, "tenant-0042": 2}
	for tenant, want := range fixed {
		if got := events.Partition(tenant); got != want {
			t.Errorf("Partition(%q) = %d, want %d", tenant, got, want)
		}
	}
	used := map[int]bool{}
	for i := range 1000 {
		tenant := "tenant-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i), byte(i >> 8)})
		p := events.Partition(tenant)
		if p < 0 || p >= events.Partitions || uint32(p) != fnv1a32(tenant)%events.Partitions {
			t.Fatalf("Partition(%q) = %d", tenant, p)
		}
		used[p] = true
	}
	if len(used) != events.Partitions {
		t.Errorf("1000 tenants fall in %d of %d partitions", len(used), events.Partitions)
	}
}

func TestPartitionTransform(t *testing.T) {
	t.Parallel()
	src, dst := events.PartitionTransform(events.StreamEvents)
	if src != "auth.evt.*.*.*" || dst != "auth.evt.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{partition(16,1)}}" {
		t.Errorf("PartitionTransform(events) = %q, %q", src, dst)
	}
	src, dst = events.PartitionTransform(events.StreamActivity)
	if src != "auth.act.*.*.*" || !strings.HasPrefix(dst, "auth.act.{{wildcard(1)}}") {
		t.Errorf("PartitionTransform(activity) = %q, %q", src, dst)
	}
	if src, dst := events.PartitionTransform("OTHER"); src != "" || dst != "" {
		t.Errorf("PartitionTransform(OTHER) = %q, %q", src, dst)
	}
}

func TestClaimSubject(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("alice.martin"))
	want := "auth.uniq.acme.username." + hex.EncodeToString(sum[:])
	if got := events.ClaimSubject("acme", events.ClaimKindUsername, "alice.martin"); got != want {
		t.Fatalf("ClaimSubject = %q, want %q", got, want)
	}
	if strings.Contains(events.ClaimSubject("acme", "email", "a.b@example.com"), "example") {
		t.Fatal("the claimed value appears in the subject")
	}
}

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"acme":                                    true,
		"01959401-b095-7008-9f8d-cc1478da435e":    true,
		"billing-admin":                           true,
		"Ünïcode":                                 true,
		strings.Repeat("a", events.MaxTokenLen):   true,
		strings.Repeat("a", events.MaxTokenLen+1): false,
		"":         false,
		"a.b":      false,
		"*":        false,
		"a>":       false,
		"a b":      false,
		"a\tb":     false,
		"a\u00a0b": false,
		"a\x00b":   false,
		"a\x7fb":   false,
		"a\xffb":   false,
	}
	for s, want := range tests {
		if got := events.ValidToken(s); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", s, got, want)
		}
	}
}
