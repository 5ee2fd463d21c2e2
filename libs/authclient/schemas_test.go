package authclient_test

// The JSON Schemas of docs/schemas are the published form of the event
// contract. These tests keep them honest: every registered type and schema
// version has one, every golden event of libs/events validates against its
// own, the schemas describe the payload structs field for field, and events
// that break the contract are rejected.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	schemaDir = "../../docs/schemas"
	goldenDir = "../events/testdata"
	schemaIDs = "https://authstream.dev/schemas/events/"
)

// versionedFile is the name of a schema or golden file: <type>.v<N>.json.
var versionedFile = regexp.MustCompile(`^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)\.v([1-9][0-9]*)\.json$`)

type schemaSet struct {
	compiler *jsonschema.Compiler
	files    []string // base names of the versioned schemas, sorted

	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

var (
	schemasOnce sync.Once
	schemas     *schemaSet
	schemasErr  error
)

// mustSchemas loads every schema file once, as resources under their $id.
func mustSchemas(tb testing.TB) *schemaSet {
	tb.Helper()
	schemasOnce.Do(func() { schemas, schemasErr = loadSchemas() })
	if schemasErr != nil {
		tb.Fatal(schemasErr)
	}
	return schemas
}

func loadSchemas() (*schemaSet, error) {
	entries, err := os.ReadDir(schemaDir)
	if err != nil {
		return nil, err
	}
	s := &schemaSet{compiler: jsonschema.NewCompiler(), compiled: map[string]*jsonschema.Schema{}}
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.AssertFormat()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(schemaDir, name))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var head struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if head.Schema != "https://json-schema.org/draft/2020-12/schema" || head.ID != schemaIDs+name {
			return nil, fmt.Errorf("%s: $schema %q and $id %q, want draft 2020-12 and %q", name, head.Schema, head.ID, schemaIDs+name)
		}
		if err := s.compiler.AddResource(head.ID, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if name != "envelope.json" {
			if !versionedFile.MatchString(name) {
				return nil, fmt.Errorf("%s: schema files are envelope.json and <type>.v<N>.json", name)
			}
			s.files = append(s.files, name)
		}
	}
	sort.Strings(s.files)
	return s, nil
}

// schema returns the compiled schema of one file.
func (s *schemaSet) schema(tb testing.TB, name string) *jsonschema.Schema {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[name]; ok {
		return sch
	}
	sch, err := s.compiler.Compile(schemaIDs + name)
	if err != nil {
		tb.Fatalf("compile %s: %v", name, err)
	}
	s.compiled[name] = sch
	return sch
}

func mustInstance(tb testing.TB, raw []byte) any {
	tb.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("instance: %v", err)
	}
	return v
}

func goldenFiles(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(goldenDir, "*.v*.json"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no golden files in %s: %v", goldenDir, err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func TestSchemas_everyRegisteredVersion(t *testing.T) {
	t.Parallel()
	s := mustSchemas(t)
	var want []string
	for _, typ := range events.Types() {
		for v := 1; v <= events.CurrentSchema(typ); v++ {
			want = append(want, fmt.Sprintf("%s.v%d.json", typ, v))
		}
	}
	sort.Strings(want)
	for _, name := range want {
		if !slices.Contains(s.files, name) {
			t.Errorf("registered type and version has no schema: docs/schemas/%s", name)
		}
	}
	for _, name := range s.files {
		if !slices.Contains(want, name) {
			t.Errorf("docs/schemas/%s describes no registered type and version", name)
		}
		s.schema(t, name) // every schema compiles
	}
	s.schema(t, "envelope.json")
	for _, name := range s.files {
		if !slices.Contains(goldenFiles(t), name) {
			t.Errorf("docs/schemas/%s has no golden event in libs/events/testdata", name)
		}
	}
}

func TestSchemas_goldenEventsValidate(t *testing.T) {
	t.Parallel()
	s := mustSchemas(t)
	for _, name := range goldenFiles(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(goldenDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.schema(t, name).Validate(mustInstance(t, raw)); err != nil {
				t.Errorf("%s does not validate against its schema: %v", name, err)
			}
			if err := s.schema(t, "envelope.json").Validate(mustInstance(t, raw)); err != nil {
				t.Errorf("%s does not validate against envelope.json: %v", name, err)
			}
			// The file name says the type and version the event claims.
			env, err := events.ParseEnvelope(raw)
			if err != nil {
				t.Fatal(err)
			}
			m := versionedFile.FindStringSubmatch(name)
			if env.Type != m[1] || strconv.Itoa(env.Schema) != m[2] {
				t.Errorf("%s holds a %s event of schema %d", name, env.Type, env.Schema)
			}
		})
	}
}

// TestSchemas_describePayloads compares the data of each current schema with
// the payload struct registered for it: the same member names, and required
// exactly when the field is always written (no omitempty).
func TestSchemas_describePayloads(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		spec, _ := events.Lookup(typ)
		name := fmt.Sprintf("%s.v%d.json", typ, spec.Schema)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(schemaDir, name))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Properties struct {
					Aggregate struct {
						Const string `json:"const"`
					} `json:"aggregate"`
					Data struct {
						Required   []string                   `json:"required"`
						Properties map[string]json.RawMessage `json:"properties"`
					} `json:"data"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Properties.Aggregate.Const != spec.Aggregate {
				t.Errorf("aggregate = %q, want %q", doc.Properties.Aggregate.Const, spec.Aggregate)
			}
			var fields, required []string
			for i := range spec.Payload.NumField() {
				f := spec.Payload.Field(i)
				tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if tag == "-" || !f.IsExported() {
					continue
				}
				if tag == "" {
					tag = f.Name
				}
				fields = append(fields, tag)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					required = append(required, tag)
				}
			}
			var described []string
			for k := range doc.Properties.Data.Properties {
				described = append(described, k)
			}
			slices.Sort(fields)
			slices.Sort(required)
			slices.Sort(described)
			got := slices.Sorted(slices.Values(doc.Properties.Data.Required))
			if !slices.Equal(described, fields) {
				t.Errorf("data members = %v, payload %v has %v", described, spec.Payload, fields)
			}
			if !slices.Equal(got, required) {
				t.Errorf("data required = %v, payload %v always writes %v", got, spec.Payload, required)
			}
		})
	}
}

// TestSchemas_rejectBrokenEvents changes a golden event in ways that break
// the contract; each change must fail validation.
func TestSchemas_rejectBrokenEvents(t *testing.T) {
	t.Parallel()
	s := mustSchemas(t)
	const name = "user.registered.v1.json"
	raw, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(e map[string]any)
	}{
		{name: "missing data member", change: func(e map[string]any) { delete(data(e), "username") }},
		{name: "password hash in clear", change: func(e map[string]any) {
			data(e)["credential"] = map[string]any{"kid": "k", "nonce": "AAAA", "ciphertext": "AAAA", "hash": "$2a$12$abc"}
		}},
		{name: "unknown envelope member", change: func(e map[string]any) { e["extra"] = true }},
		{name: "other type", change: func(e map[string]any) { e["type"] = "user.deleted" }},
		{name: "other schema version", change: func(e map[string]any) { e["schema"] = 2 }},
		{name: "other aggregate", change: func(e map[string]any) { e["aggregate"] = "role" }},
		{name: "prev on version 1", change: func(e map[string]any) { e["prev"] = e["hash"] }},
		{name: "no prev on version 2", change: func(e map[string]any) { e["version"] = 2 }},
		{name: "hash in upper case", change: func(e map[string]any) { e["hash"] = strings.ToUpper(e["hash"].(string)) }},
		{name: "id not a uuid", change: func(e map[string]any) { e["id"] = "evt-1" }},
		{name: "tenant with a dot", change: func(e map[string]any) { e["tenant"] = "acme.corp" }},
		{name: "time with an offset", change: func(e map[string]any) { e["occurred_at"] = "2025-03-14T11:34:54.083620394+01:00" }},
		{name: "time with trailing zeros", change: func(e map[string]any) { e["occurred_at"] = "2025-03-14T10:34:54.080Z" }},
		{name: "actor without sub", change: func(e map[string]any) { e["actor"] = map[string]any{"tenant": "acme"} }},
		{name: "data not an object", change: func(e map[string]any) { e["data"] = "x" }},
		{name: "missing hash", change: func(e map[string]any) { delete(e, "hash") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e map[string]any
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			tt.change(e)
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.schema(t, name).Validate(mustInstance(t, b)); err == nil {
				t.Errorf("broken event validates: %s", b)
			}
		})
	}
}

func data(e map[string]any) map[string]any { return e["data"].(map[string]any) }

// The payload structs are plain structs of JSON fields; a field of another
// kind (embedded, say) would need the test above to learn it.
var _ = reflect.Struct
