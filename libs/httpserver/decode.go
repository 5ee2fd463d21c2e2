package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/fault"
)

// Decoding limits. A request body is small structured input; anything
// bigger or deeper is a mistake or an attack on the parser.
const (
	DefaultMaxBodyBytes = 64 << 10 // 64 KiB
	DefaultMaxDepth     = 32
)

// ReasonInvalidBody is the reason of a well-formed JSON body that does not
// fit the expected shape (an unknown field, a value of the wrong type).
const ReasonInvalidBody = "invalid-body"

// DecodeOption changes a default of DecodeJSON.
type DecodeOption func(*decodeConfig)

type decodeConfig struct {
	maxBytes int64
	maxDepth int
}

// WithMaxBytes sets the body size limit (default DefaultMaxBodyBytes).
// Values below 1 keep the default.
func WithMaxBytes(n int64) DecodeOption {
	return func(c *decodeConfig) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// WithMaxDepth sets the nesting limit of arrays and objects (default
// DefaultMaxDepth). Values below 1 keep the default.
func WithMaxDepth(n int) DecodeOption {
	return func(c *decodeConfig) {
		if n > 0 {
			c.maxDepth = n
		}
	}
}

// DecodeJSON decodes the request body into dst, strictly: the Content-Type
// must be application/json (or a +json type), the body at most 64 KiB, hold
// exactly one JSON value nested at most 32 deep, and name only fields dst
// knows. Every failure is a *fault.Error with code fault.Invalid and a
// message that says what is wrong and where when known ("unknown field
// \"passwrd\"", "body exceeds 65536 bytes", "malformed JSON at offset 17");
// reasons: ReasonUnsupportedMediaType (WriteError answers 415),
// ReasonBodyTooLarge (413), ReasonMalformedJSON or ReasonInvalidBody (400).
// A dst that is not a non-nil pointer is a bug and gives a fault.Internal
// error. On failure dst may be partly filled.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, opts ...DecodeOption) error {
	return DecodeJSONFast(w, r, dst, nil, opts...)
}

// DecodeJSONFast is DecodeJSON with fast, when not nil, tried first on the
// body, read under the same checks and limits: fast decodes the one shape
// a route's bodies usually have straight into dst, without the reflection
// of encoding/json, and reports whether it did. It must take only bodies
// that DecodeJSON decodes without error into the same dst; any other body
// goes through DecodeJSON's decoder and its errors.
func DecodeJSONFast(w http.ResponseWriter, r *http.Request, dst any, fast func(body []byte) bool, opts ...DecodeOption) error {
	cfg := decodeConfig{maxBytes: DefaultMaxBodyBytes, maxDepth: DefaultMaxDepth}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.Body == nil {
		return emptyBody()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.maxBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fault.New(fault.Invalid, ReasonBodyTooLarge, fmt.Sprintf("body exceeds %d bytes", cfg.maxBytes))
		}
		return fault.Wrap(fault.Invalid, err, "cannot read the request body")
	}
	if fast != nil && fast(body) {
		return nil
	}
	return decodeBytes(body, dst, cfg)
}

func emptyBody() error {
	return fault.New(fault.Invalid, ReasonMalformedJSON, "request body is empty; a JSON value is required")
}

// checkContentType accepts application/json and structured +json types.
func checkContentType(v string) error {
	if v == "" {
		return fault.New(fault.Invalid, ReasonUnsupportedMediaType, "Content-Type must be application/json; the request has none")
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return fault.New(fault.Invalid, ReasonUnsupportedMediaType,
			fmt.Sprintf("Content-Type must be application/json, not %q", truncate(v, 64)))
	}
	return nil
}

// decodeBytes is DecodeJSON after the body is read: the part the fuzz
// target exercises through DecodeJSON.
func decodeBytes(body []byte, dst any, cfg decodeConfig) error {
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return emptyBody()
	}
	if off, ok := withinDepth(body, cfg.maxDepth); !ok {
		return fault.New(fault.Invalid, ReasonMalformedJSON,
			fmt.Sprintf("JSON nesting exceeds %d levels at offset %d", cfg.maxDepth, off))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, len(body))
	}
	off := dec.InputOffset()
	rest := body[off:]
	trimmed := bytes.TrimLeft(rest, " \t\r\n")
	if len(trimmed) > 0 {
		return fault.New(fault.Invalid, ReasonMalformedJSON,
			fmt.Sprintf("request body must hold exactly one JSON value; unexpected data at offset %d", off+int64(len(rest)-len(trimmed))))
	}
	return nil
}

// withinDepth scans body for brackets outside strings and reports whether
// nesting stays within max, or the offset where it goes deeper. It does not
// validate the syntax (the decoder does); it only keeps a deeply nested body
// from reaching the recursive decoder.
func withinDepth(body []byte, max int) (int, bool) {
	depth := 0
	inString, escaped := false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return i, false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return 0, true
}

// decodeError turns an encoding/json error into a fault with a message a
// client can act on.
func decodeError(err error, size int) error {
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		// Offset counts the bytes read including the bad one; report the
		// bad byte's own zero-based position, as the other messages do.
		return fault.New(fault.Invalid, ReasonMalformedJSON, fmt.Sprintf("malformed JSON at offset %d: %s", max(e.Offset-1, 0), strings.TrimPrefix(e.Error(), "json: ")))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fault.New(fault.Invalid, ReasonMalformedJSON, fmt.Sprintf("malformed JSON at offset %d: unexpected end of body", size))
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		want := describeType(e.Type)
		if e.Field == "" {
			return fault.New(fault.Invalid, ReasonInvalidBody, fmt.Sprintf("request body must be %s, got %s", want, e.Value))
		}
		return fault.New(fault.Invalid, ReasonInvalidBody,
			fmt.Sprintf("field %q must be %s, got %s (offset %d)", truncate(e.Field, 128), want, truncate(e.Value, 64), e.Offset))
	}
	if e, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		return fault.Wrap(fault.Internal, e, "decode target is not a pointer")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fault.New(fault.Invalid, ReasonInvalidBody, "unknown field "+truncate(name, 128))
	}
	// An UnmarshalJSON method of dst refused the value; a *fault.Error
	// keeps its own message and reason.
	if fe, ok := errors.AsType[*fault.Error](err); ok {
		return fe
	}
	return fault.New(fault.Invalid, ReasonInvalidBody, "invalid value: "+truncate(strings.TrimPrefix(err.Error(), "json: "), 200))
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
