package auditlog_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, tenant, want string
		bad               bool
	}{
		{url: "http://127.0.0.1:8080", tenant: "acme", want: "127.0.0.1:8080/t/acme"},
		{url: "https://id.example.com/", tenant: "acme", want: "id.example.com/t/acme"},
		{url: "https://example.com/auth", tenant: "acme", want: "example.com/auth/t/acme"},
		{url: "ftp://example.com", tenant: "acme", bad: true},
		{url: "example.com", tenant: "acme", bad: true},
		{url: "http://example.com/a+b", tenant: "acme", bad: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			got, err := auditlog.Origin(tc.url, tc.tenant)
			if tc.bad {
				if err == nil {
					t.Fatalf("Origin(%q) = %q, want an error", tc.url, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Origin(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
			}
		})
	}
}

func TestLeafHash(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("an event"))
	h, err := auditlog.LeafHash(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	// RFC 9162: the leaf hash is SHA-256(0x00 ‖ data).
	if want := sha256.Sum256(append([]byte{0}, sum[:]...)); h != tlog.Hash(want) {
		t.Fatalf("leaf hash %x, want %x", h, want)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		if _, err := auditlog.LeafHash(bad); err == nil {
			t.Errorf("LeafHash(%q) succeeded", bad)
		}
	}
}

func mustKey(tb testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return pub, priv
}

func TestSign_Open(t *testing.T) {
	t.Parallel()
	const origin = "127.0.0.1:8080/t/acme"
	pub, priv := mustKey(t)
	s, err := auditlog.NewSigner(origin, priv)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := auditlog.VerifierKey(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	cp := auditlog.Checkpoint{Origin: origin, Size: 42, Root: tlog.RecordHash([]byte("root"))}
	msg, err := auditlog.Sign(cp, s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(msg), origin+"\n42\n") {
		t.Fatalf("note %q does not start with the origin and the size", msg)
	}
	// The standard library of the format opens it.
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	got, err := auditlog.Open(msg, vkey)
	if err != nil || got != cp {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, cp)
	}
	if un, err := auditlog.Unverified(msg); err != nil || un != cp {
		t.Fatalf("Unverified = %+v, %v; want %+v", un, err, cp)
	}

	t.Run("another key", func(t *testing.T) {
		t.Parallel()
		other, _ := mustKey(t)
		okey, err := auditlog.VerifierKey(origin, other)
		if err != nil {
			t.Fatal(err)
		}
		var unknown *note.UnverifiedNoteError
		if _, err := auditlog.Open(msg, okey); !errors.As(err, &unknown) {
			t.Fatalf("Open with another key: %v, want an unverified note", err)
		}
	})
	t.Run("altered", func(t *testing.T) {
		t.Parallel()
		bad := strings.Replace(string(msg), "\n42\n", "\n43\n", 1)
		if _, err := auditlog.Open([]byte(bad), vkey); err == nil {
			t.Fatal("an altered checkpoint opened")
		}
	})
	t.Run("another log's name", func(t *testing.T) {
		t.Parallel()
		if _, err := auditlog.Sign(auditlog.Checkpoint{Origin: "127.0.0.1:8080/t/other", Size: 1}, s); err == nil {
			t.Fatal("a key of acme signed a checkpoint of another tenant")
		}
	})
}

func TestParseCheckpoint(t *testing.T) {
	t.Parallel()
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{name: "plain", text: "o\n0\n" + root + "\n", ok: true},
		{name: "extension lines", text: "o\n7\n" + root + "\nextra\n", ok: true},
		{name: "no final newline", text: "o\n7\n" + root},
		{name: "negative size", text: "o\n-1\n" + root + "\n"},
		{name: "leading zero", text: "o\n07\n" + root + "\n"},
		{name: "short root", text: "o\n7\nAAAA\n"},
		{name: "empty origin", text: "\n7\n" + root + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auditlog.ParseCheckpoint(tc.text)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseCheckpoint(%q) = %v", tc.text, err)
			}
			if err != nil && !errors.Is(err, auditlog.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("127.0.0.1:8080/t/acme\n3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := auditlog.ParseCheckpoint(text)
		if err != nil {
			return
		}
		again, err := auditlog.ParseCheckpoint(c.Text())
		if err != nil || again != c {
			t.Fatalf("the text of %+v reads back as %+v, %v", c, again, err)
		}
	})
}

func TestIsLeaf(t *testing.T) {
	t.Parallel()
	e := events.Envelope{Tenant: "acme", Aggregate: "user", AggregateID: "u1"}
	own := events.StoredSubject("acme", "user", "u1")
	for _, tc := range []struct {
		name    string
		subject string
		env     events.Envelope
		want    bool
	}{
		{name: "on its own subject", subject: own, env: e, want: true},
		{name: "an aggregate this release does not know", subject: "auth.evt.acme.webhook.w1." + strconv.Itoa(events.Partition("acme")),
			env: events.Envelope{Tenant: "acme", Aggregate: "webhook", AggregateID: "w1"}, want: true},
		{name: "another tenant's subject", subject: events.StoredSubject("globex", "user", "u1"), env: e},
		{name: "another id", subject: events.StoredSubject("acme", "user", "u2"), env: e},
		{name: "another partition", subject: events.Subject("acme", "user", "u1") + ".99", env: e},
		{name: "no partition", subject: events.Subject("acme", "user", "u1"), env: e},
		{name: "no stream prefix", subject: "acme.user.u1." + strconv.Itoa(events.Partition("acme")), env: e},
		{name: "the activity stream", subject: "auth.act.acme.user.u1." + strconv.Itoa(events.Partition("acme")), env: e},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := auditlog.IsLeaf(tc.subject, tc.env); got != tc.want {
				t.Fatalf("IsLeaf(%q) = %v, want %v", tc.subject, got, tc.want)
			}
		})
	}
}

func BenchmarkIsLeaf(b *testing.B) {
	e := events.Envelope{Tenant: "acme", Aggregate: "user", AggregateID: "0196c5c3-11aa-7b3e-8f0e-6f2a9d1c0b22"}
	subject := events.StoredSubject(e.Tenant, e.Aggregate, e.AggregateID)
	for b.Loop() {
		if !auditlog.IsLeaf(subject, e) {
			b.Fatal("not a leaf")
		}
	}
}
