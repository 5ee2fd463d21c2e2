package authstream_test

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDeployment_DockerfileBuildsEveryBinary builds every binary of the
// image the way deployments/Dockerfile does, without a container engine:
// the build stage's COPY lines copy exactly their sources from the
// repository into a temporary build context, and the stage's RUN script
// runs there once per BINARY, with the module cache as it is and nothing
// downloaded. Each binary must come out where the final stage copies it
// from, linked against the same module versions as the workspace builds
// and tests, and every binary under services/*/cmd must have a BINARY.
// An image that drifts from the workspace (a file it does not copy, a
// dependency it cannot resolve) fails here.
func TestDeployment_DockerfileBuildsEveryBinary(t *testing.T) {
	t.Parallel()
	start := time.Now()
	const repo = "../.."
	df := mustParseDockerfile(t, filepath.Join(repo, "deployments", "Dockerfile"))

	var want []string
	cmds, err := filepath.Glob(filepath.Join(repo, "services", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range cmds {
		want = append(want, filepath.Base(dir))
	}
	slices.Sort(want)
	if got := slices.Sorted(slices.Values(df.binaries)); !slices.Equal(got, want) {
		t.Fatalf("the Dockerfile builds %v, the services have the binaries %v", got, want)
	}

	context := t.TempDir()
	workdir := filepath.Join(context, filepath.FromSlash(strings.TrimPrefix(df.workdir, "/")))
	for _, c := range df.copies {
		for _, src := range c.srcs {
			mustCopy(t, filepath.Join(repo, filepath.FromSlash(src)), filepath.Join(workdir, filepath.FromSlash(c.dst)), strings.HasSuffix(c.dst, "/"))
		}
	}

	out := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"),
		// The module cache as it is: a module the build lacks is an error,
		// not a download.
		"GOPROXY=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local",
	}
	built := 0
	for _, bin := range df.binaries {
		path := filepath.Join(out, bin)
		script := strings.ReplaceAll(df.run, df.artifact, path)
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = workdir
		cmd.Env = append(slices.Clone(env), "BINARY="+bin)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("BINARY=%s: the Dockerfile's build fails: %v\n%s", bin, err, b)
			continue
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("BINARY=%s: no executable at %s, where the final stage copies it from (%v)", bin, df.artifact, err)
			continue
		}
		got := mustLinkedModules(t, path)
		ws := mustWorkspaceModules(t, repo, bin)
		if !slices.Equal(got, ws) {
			t.Errorf("BINARY=%s links other module versions than the workspace:\nimage     %v\nworkspace %v", bin, got, ws)
		}
		built++
	}
	t.Logf("built %d of %d binaries from the Dockerfile's build context in %s", built, len(df.binaries), time.Since(start).Round(time.Millisecond))
}

// dockerfile is what the test reads of deployments/Dockerfile.
type dockerfile struct {
	workdir  string       // the build stage's WORKDIR
	copies   []dockerCopy // the build stage's COPY lines from the context
	run      string       // the build stage's RUN script, flags removed
	binaries []string     // the values of BINARY the script accepts
	artifact string       // what the final stage copies from the build stage
}

type dockerCopy struct {
	srcs []string
	dst  string
}

// mustParseDockerfile reads the instructions of path (continuation lines
// joined, comments dropped) and picks the build stage apart.
func mustParseDockerfile(tb testing.TB, path string) dockerfile {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var (
		instrs []string
		cur    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s)
			cur.WriteString("\n")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			instrs = append(instrs, s)
		}
		cur.Reset()
	}
	var (
		df    dockerfile
		stage string
	)
	for _, in := range instrs {
		op, args, _ := strings.Cut(in, " ")
		args = strings.TrimSpace(args)
		switch fields := strings.Fields(args); strings.ToUpper(op) {
		case "FROM":
			stage = ""
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				stage = fields[2]
			}
		case "WORKDIR":
			if stage == "build" {
				df.workdir = args
			}
		case "COPY":
			var from string
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
					from = v
				}
				fields = fields[1:]
			}
			if len(fields) < 2 || strings.HasPrefix(fields[0], "[") {
				tb.Fatalf("Dockerfile: COPY %s: want the shell form with a source and a destination", args)
			}
			switch {
			case stage == "build" && from == "":
				df.copies = append(df.copies, dockerCopy{srcs: fields[:len(fields)-1], dst: fields[len(fields)-1]})
			case from == "build":
				df.artifact = fields[0]
			}
		case "RUN":
			if stage != "build" || !strings.Contains(args, "go build") {
				continue
			}
			for strings.HasPrefix(args, "--") {
				_, args, _ = strings.Cut(args, " ")
				args = strings.TrimSpace(args)
			}
			df.run = args
		}
	}
	if df.workdir == "" || len(df.copies) == 0 || df.run == "" || df.artifact == "" {
		tb.Fatalf("Dockerfile: want a stage \"build\" with WORKDIR, COPY and a RUN with go build, "+
			"and a final stage copying from it; got %+v", df)
	}
	if !strings.Contains(df.run, df.artifact) {
		tb.Fatalf("Dockerfile: the build writes no %s, which the final stage copies", df.artifact)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*([a-z][a-z0-9-]*)\)`).FindAllStringSubmatch(df.run, -1) {
		df.binaries = append(df.binaries, m[1])
	}
	return df
}

// mustCopy copies src (a file, or a folder with everything in it, as
// COPY does) to dst; into dst when dst names a folder.
func mustCopy(tb testing.TB, src, dst string, intoDir bool) {
	tb.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		tb.Fatalf("COPY source: %v", err)
	}
	if !fi.IsDir() {
		if intoDir {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		mustCopyFile(tb, src, dst)
		return
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		mustCopyFile(tb, path, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		tb.Fatalf("COPY %s: %v", src, err)
	}
}

func mustCopyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		tb.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// mustLinkedModules lists the modules from a registry that the binary at
// path links, as path@version; local replacements (the repository's own
// modules) are left out.
func mustLinkedModules(tb testing.TB, path string) []string {
	tb.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		tb.Fatalf("build info of %s: %v", path, err)
	}
	var mods []string
	for _, d := range info.Deps {
		if d.Replace != nil {
			if r := d.Replace.Path; strings.HasPrefix(r, "./") || strings.HasPrefix(r, "../") || filepath.IsAbs(r) {
				continue // a folder of the repository
			}
			d = d.Replace
		}
		mods = append(mods, d.Path+"@"+d.Version)
	}
	slices.Sort(mods)
	return mods
}

// mustWorkspaceModules lists, like mustLinkedModules, the modules the
// workspace build of binary bin links.
func mustWorkspaceModules(tb testing.TB, repo, bin string) []string {
	tb.Helper()
	dirs, err := filepath.Glob(filepath.Join(repo, "services", "*", "cmd", bin))
	if err != nil || len(dirs) != 1 {
		tb.Fatalf("no single package of %s: %v %v", bin, dirs, err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if .Version}}{{.Path}}@{{.Version}}{{end}}{{end}}", ".")
	cmd.Dir = dirs[0]
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list -deps of %s: %v", bin, err)
	}
	var mods []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !slices.Contains(mods, line) {
			mods = append(mods, line)
		}
	}
	slices.Sort(mods)
	return mods
}

// goEnv returns the go command's value of the variable name.
func goEnv(tb testing.TB, name string) string {
	tb.Helper()
	b, err := exec.Command("go", "env", name).Output()
	if err != nil {
		tb.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}
