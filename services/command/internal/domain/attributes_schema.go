package domain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/authstream/authstream/libs/events"
)

// MaxAttributesSchemaLen bounds a tenant's attributes schema, in bytes of
// canonical JSON.
const MaxAttributesSchemaLen = 64 << 10

// attributesSchemaURL is the name a tenant's schema is compiled under. It
// resolves nowhere: every $ref must point inside the schema itself.
const attributesSchemaURL = "https://user-attributes.authstream.invalid/schema.json"

// errRemoteRef is what the loader answers for any reference outside the
// schema: a tenant's schema must not make the service read files or
// fetch URLs.
var errRemoteRef = errors.New("a reference outside the schema")

type noLoader struct{}

func (noLoader) Load(url string) (any, error) { return nil, errRemoteRef }

// schemaCache keeps compiled schemas by the SHA-256 of their canonical
// form: a tenant's schema compiles once per process, not per command.
// Tenants change schemas rarely; the cache is bounded anyway.
var schemaCache = struct {
	sync.Mutex
	m map[[32]byte]*jsonschema.Schema
}{m: map[[32]byte]*jsonschema.Schema{}}

const maxCachedSchemas = 1024

// compileAttributesSchema compiles a tenant's attributes schema (draft
// 2020-12 unless it says another draft the library embeds), asserting
// formats, with every reference outside the schema refused.
func compileAttributesSchema(canon []byte) (*jsonschema.Schema, error) {
	key := sha256.Sum256(canon)
	schemaCache.Lock()
	sch, ok := schemaCache.m[key]
	schemaCache.Unlock()
	if ok {
		return sch, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(canon))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(attributesSchemaURL, doc); err != nil {
		return nil, err
	}
	if sch, err = c.Compile(attributesSchemaURL); err != nil {
		return nil, err
	}
	schemaCache.Lock()
	if len(schemaCache.m) >= maxCachedSchemas {
		clear(schemaCache.m)
	}
	schemaCache.m[key] = sch
	schemaCache.Unlock()
	return sch, nil
}

// checkAttributesSchema validates a tenant's attributes schema, decoded
// with numbers as json.Number, and returns its canonical form: a JSON
// object within MaxAttributesSchemaLen that compiles without reaching
// outside itself and describes an object ("type": "object").
func checkAttributesSchema(doc any) (events.RawJSON, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, detail(ErrInvalidSettings, "the attributes schema must be a JSON object")
	}
	if m["type"] != "object" {
		return nil, detail(ErrInvalidSettings, `the attributes schema must describe an object ("type": "object")`)
	}
	canon, err := events.Canonical(doc)
	if err != nil {
		return nil, detail(ErrInvalidSettings, "the attributes schema cannot be encoded")
	}
	if len(canon) > MaxAttributesSchemaLen {
		return nil, detail(ErrInvalidSettings, "the attributes schema is larger than %d bytes", MaxAttributesSchemaLen)
	}
	if _, err := compileAttributesSchema(canon); err != nil {
		if errors.Is(err, errRemoteRef) {
			return nil, detail(ErrInvalidSettings, "the attributes schema refers outside itself; only references within it are allowed")
		}
		return nil, detail(ErrInvalidSettings, "the attributes schema is not a valid JSON Schema: %s", schemaProblem(err))
	}
	return canon, nil
}

// schemaProblem returns the first line of a compiler error, without the
// URL the schema was compiled under.
func schemaProblem(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	msg = strings.ReplaceAll(msg, attributesSchemaURL, "schema")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// validateAttributes validates canonical attributes against a compiled
// schema; the problem names the first failing location.
func validateAttributes(sch *jsonschema.Schema, canon []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(canon))
	if err != nil {
		return detail(ErrInvalidAttributes, "attributes are not valid JSON")
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		leaf := ve
		for len(leaf.Causes) > 0 {
			leaf = leaf.Causes[0]
		}
		return detail(ErrInvalidAttributes, "attributes at /%s: %s", strings.Join(leaf.InstanceLocation, "/"), leafMessage(leaf))
	}
	return detail(ErrInvalidAttributes, "attributes are not valid under the tenant's schema")
}

// leafMessage is a validation error's own message, without its causes.
func leafMessage(ve *jsonschema.ValidationError) string {
	msg := ve.ErrorKind.LocalizedString(message.NewPrinter(language.English))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
