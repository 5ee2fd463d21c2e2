package httpserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

// FuzzDecodeJSON checks that no body makes DecodeJSON panic or fail with
// anything but an invalid-input fault, and that what it accepts is one valid
// JSON value. The seed corpus is in testdata/fuzz/FuzzDecodeJSON.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"username":"ann","password":"pw","roles":["a"]}`, `[]`, `{"profile":{"age":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var dst registerBody
		err := httpserver.DecodeJSON(httptest.NewRecorder(), req, &dst, httpserver.WithMaxBytes(4096))
		if err != nil {
			if c := fault.CodeOf(err); c != fault.Invalid {
				t.Fatalf("code %s for %q: %v", c, body, err)
			}
			if fault.MessageOf(err) == "" {
				t.Fatalf("empty message for %q", body)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
	})
}
