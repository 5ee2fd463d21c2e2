package mailtemplate_test

import (
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
)

// BenchmarkCompile is the check of one tenant's override, paid by the
// command service on each PUT and by the dispatcher once per override it
// reads.
func BenchmarkCompile(b *testing.B) {
	src, _ := mailtemplate.DefaultSource(events.LinkResetPassword)
	for b.Loop() {
		if _, err := mailtemplate.Compile("acme", events.LinkResetPassword, src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender is the rendering of one mail, defaults or a tenant's.
func BenchmarkRender(b *testing.B) {
	def, err := mailtemplate.Default(events.LinkResetPassword)
	if err != nil {
		b.Fatal(err)
	}
	src, _ := mailtemplate.DefaultSource(events.LinkResetPassword)
	own, err := mailtemplate.Compile("acme", events.LinkResetPassword, src)
	if err != nil {
		b.Fatal(err)
	}
	for name, set := range map[string]*mailtemplate.Set{"default": def, "tenant": own} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := set.Render(sample()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
