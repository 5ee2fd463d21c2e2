package arch_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// modulePrefix is the import path of the repository's root: every module
// lives at <modulePrefix><its directory>.
const modulePrefix = "github.com/authstream/authstream/"

// root is the repository's root, from this package's directory.
const root = "../.."

// row is one line of the table "Where things live".
type row struct {
	pkg     string   // directory, e.g. services/query/internal/app
	holds   string   // what it holds
	imports []string // patterns of the repository's packages it may import
}

// mustTable reads the table that follows the heading "## Where things
// live" in docs/architecture.md: | `package` | holds | may import |, the
// last column a comma-separated list of `pattern`s (path.Match patterns
// over package directories; "—" for none).
func mustTable(tb testing.TB) []row {
	tb.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var rows []row
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Where things live"
			continue
		case !in || !strings.HasPrefix(line, "| `"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			tb.Fatalf("architecture.md: row %q does not have three cells", line)
		}
		r := row{pkg: strings.Trim(strings.TrimSpace(cells[0]), "`"), holds: strings.TrimSpace(cells[1])}
		for p := range strings.SplitSeq(cells[2], ",") {
			if p = strings.Trim(strings.TrimSpace(p), "`"); p != "" && p != "—" {
				if _, err := path.Match(p, ""); err != nil {
					tb.Fatalf("architecture.md: %s: bad pattern %q", r.pkg, p)
				}
				r.imports = append(r.imports, p)
			}
		}
		if r.holds == "" {
			tb.Errorf("architecture.md: %s says nothing of what it holds", r.pkg)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(rows) == 0 {
		tb.Fatal(`architecture.md has no table under "## Where things live"`)
	}
	return rows
}

// packages returns the directories under libs, services and tools that
// hold Go files, with the repository's packages each one's non-test files
// import (tests may reach further: a benchmark of the application drives
// it through its router).
func packages(tb testing.TB) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, top := range []string{"libs", "services", "tools"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") {
				return nil
			}
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			imps := out[rel]
			out[rel] = imps
			if strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				ip := strings.Trim(imp.Path.Value, `"`)
				if dep, ok := strings.CutPrefix(ip, modulePrefix); ok && !slices.Contains(imps, dep) {
					imps = append(imps, dep)
				}
			}
			out[rel] = imps
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// TestWhereThingsLive checks docs/architecture.md's table of packages
// against the tree: one row per package, and each package's non-test code
// importing only the repository's packages its row allows (its own
// sub-packages need no mention).
func TestWhereThingsLive(t *testing.T) {
	rows := mustTable(t)
	pkgs := packages(t)
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.pkg] {
			t.Errorf("architecture.md: %s has two rows", r.pkg)
		}
		seen[r.pkg] = true
		imps, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("architecture.md: %s is no package of the tree", r.pkg)
			continue
		}
		for _, dep := range imps {
			if dep == r.pkg || strings.HasPrefix(dep, r.pkg+"/") {
				continue
			}
			if !slices.ContainsFunc(r.imports, func(p string) bool { ok, _ := path.Match(p, dep); return ok }) {
				t.Errorf("%s imports %s, which its row in architecture.md does not allow (%s)", r.pkg, dep, strings.Join(r.imports, ", "))
			}
		}
	}
	var missing []string
	for p := range pkgs {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	for _, p := range missing {
		t.Errorf("architecture.md: package %s has no row in \"Where things live\"", p)
	}
}
