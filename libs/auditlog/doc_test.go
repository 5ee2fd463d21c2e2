package auditlog_test

import (
	"os"
	"strings"
	"testing"
)

// TestAuditingDoc keeps the Go snippet of docs/auditing.md ("Checking with
// standard tools") the code Example_verifyExport runs: each of its lines
// must occur in example_test.go, in order.
func TestAuditingDoc(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/auditing.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n### Checking with standard tools\n")
	if !ok {
		t.Fatal("docs/auditing.md has no section \"Checking with standard tools\"")
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		t.Fatal("no go code block in \"Checking with standard tools\"")
	}
	snippet, _, _ := strings.Cut(rest, "```")
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	i := 0
	for _, want := range strings.Split(snippet, "\n") {
		if want = strings.TrimSpace(want); want == "" {
			continue
		}
		for i < len(lines) && lines[i] != want {
			i++
		}
		if i == len(lines) {
			t.Fatalf("the snippet's line %q is not in example_test.go (in order)", want)
		}
	}
}
