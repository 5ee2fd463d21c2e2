package authclient_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

const eventsDoc = "../../docs/events.md"

// TestEventsDoc keeps docs/events.md in step with the code: a section for
// every registered type, every golden event shown verbatim, and the token
// verification snippet the same code as ExampleMiddleware, which compiles.
func TestEventsDoc(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(eventsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, typ := range events.Types() {
		if !strings.Contains(doc, "#### `"+typ+"`") {
			t.Errorf("docs/events.md has no section for %s", typ)
		}
	}
	for _, name := range goldenFiles(t) {
		golden, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(doc, "```json\n"+strings.TrimSpace(string(golden))+"\n```") {
			t.Errorf("docs/events.md does not show %s verbatim", name)
		}
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if missing := snippetNotIn(codeBlock(t, doc, "## Verify tokens in a dozen lines"), string(example)); missing != "" {
		t.Errorf("the snippet of \"Verify tokens in a dozen lines\" differs from ExampleMiddleware at %q", missing)
	}
}

// codeBlock returns the first fenced code block after heading in doc.
func codeBlock(tb testing.TB, doc, heading string) string {
	tb.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		tb.Fatalf("no heading %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		tb.Fatalf("no go code block after %q", heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// snippetNotIn returns the first line of snippet (spaces trimmed) that does
// not occur in src in order after the previous one, or "" when all do.
func snippetNotIn(snippet, src string) string {
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	i := 0
	for _, want := range strings.Split(snippet, "\n") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		for i < len(lines) && lines[i] != want {
			i++
		}
		if i == len(lines) {
			return want
		}
		i++
	}
	return ""
}
