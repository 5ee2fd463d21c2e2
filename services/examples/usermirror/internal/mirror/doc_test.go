package mirror_test

import (
	"os"
	"strings"
	"testing"
)

// TestEventsDoc checks that the snippet of "Mirror users in a dozen lines"
// in docs/events.md is the code of Example_dozenLines, which compiles.
func TestEventsDoc(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n## Mirror users in a dozen lines\n")
	if !ok {
		t.Fatal("docs/events.md has no section \"Mirror users in a dozen lines\"")
	}
	_, rest, _ = strings.Cut(rest, "```go\n")
	snippet, _, _ := strings.Cut(rest, "```")
	var src []string
	for _, l := range strings.Split(string(example), "\n") {
		src = append(src, strings.TrimSpace(l))
	}
	i := 0
	for _, want := range strings.Split(snippet, "\n") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		for i < len(src) && src[i] != want {
			i++
		}
		if i == len(src) {
			t.Fatalf("snippet line %q is not in Example_dozenLines (in order)", want)
		}
		i++
	}
}
