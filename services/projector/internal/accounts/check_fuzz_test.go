package accounts_test

import (
	"strconv"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/accounts"
)

// FuzzParseSubject feeds arbitrary stored subjects (what any writer of the
// log could leave there) to ParseSubject: it never panics, and what it
// accepts is exactly the subject the stream's transform writes for the
// tokens it read. The seed corpus is in testdata/fuzz/FuzzParseSubject.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		events.StoredSubject("acme", events.AggregateUser, "u1"), "auth.evt.acme.user.u1", "auth.evt.acme.user.u1.99",
		"auth.evt..user.u1.3", "auth.evt.a.b.c.d.e", "", ".", "auth.evt.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		s, err := accounts.ParseSubject(subject)
		if err != nil {
			return
		}
		want := events.SubjectPrefixEvents + "." + s.Tenant + "." + s.Aggregate + "." + s.ID + "." + strconv.Itoa(s.Partition)
		if want != subject || s.Partition != events.Partition(s.Tenant) {
			t.Fatalf("ParseSubject(%q) = %+v, which writes %q", subject, s, want)
		}
	})
}
