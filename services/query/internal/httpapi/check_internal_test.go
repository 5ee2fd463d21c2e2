package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"testing"

	"github.com/authstream/authstream/libs/httpserver"
)

// TestWriteCheckAnswer_likeWriteJSON: the check's answers, written without
// an encoder, are what WriteJSON writes for them, headers included.
func TestWriteCheckAnswer_likeWriteJSON(t *testing.T) {
	t.Parallel()
	for _, allowed := range []bool{false, true} {
		want := httptest.NewRecorder()
		httpserver.WriteJSON(want, 200, CheckResponse{Allowed: allowed})
		got := httptest.NewRecorder()
		writeCheckAnswer(got, allowed)
		if got.Code != want.Code || got.Body.String() != want.Body.String() || !maps.EqualFunc(got.Header(), want.Header(), func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
			t.Errorf("allowed=%v: %d %v %q, want %d %v %q", allowed, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}

// TestCheckRequest_decodePlain: the body clients send is decoded without
// encoding/json, anything else is left to it.
func TestCheckRequest_decodePlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body       string
		want       bool
		user, perm string
	}{
		{`{"user_id":"01HZX","permission":"invoices:read"}`, true, "01HZX", "invoices:read"},
		{`{"user_id":"u-1","permission":"*"}` + " \n", true, "u-1", "*"},
		{`{"user_id":"","permission":""}`, true, "", ""},
		{`{"permission":"invoices:read","user_id":"u"}`, false, "", ""},    // other order
		{` {"user_id":"u","permission":"p"}`, false, "", ""},               // leading space
		{`{"user_id": "u","permission":"p"}`, false, "", ""},               // inner space
		{`{"user_id":"u\u0041","permission":"p"}`, false, "", ""},          // escape
		{`{"user_id":"u","permission":"p","extra":1}`, false, "", ""},      // more fields
		{`{"user_id":"u","permission":"p"}x`, false, "", ""},               // trailing data
		{`{"user_id":"u","permission":"p"`, false, "", ""},                 // cut short
		{`{"user_id":"\u00e9","permission":"p"}`, false, "", ""},           // escape
		{"{\"user_id\":\"\xc3\xa9\",\"permission\":\"p\"}", false, "", ""}, // not ASCII
		{`{"USER_ID":"u","permission":"p"}`, false, "", ""},                // json matches it, case-insensitively
	}
	for _, tt := range tests {
		var req CheckRequest
		if got := req.decodePlain([]byte(tt.body)); got != tt.want || req.UserID != tt.user || req.Permission != tt.perm {
			t.Errorf("%s: %v %+v, want %v {%s %s}", tt.body, got, req, tt.want, tt.user, tt.perm)
		}
	}
}

// FuzzCheckRequest_decodePlain: whatever body decodePlain takes,
// encoding/json (as DecodeJSON runs it) decodes to the same request.
func FuzzCheckRequest_decodePlain(f *testing.F) {
	for _, s := range []string{`{"user_id":"u","permission":"p"}`, `{"user_id":"a\"b","permission":"p"}`, "{\"user_id\":\"u\",\"permission\":\"p\"}\t\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast CheckRequest
		if !fast.decodePlain(body) {
			return
		}
		var slow CheckRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&slow); err != nil {
			t.Fatalf("%q: taken fast, but encoding/json: %v", body, err)
		}
		if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 || slow != fast {
			t.Fatalf("%q: fast %+v, encoding/json %+v", body, fast, slow)
		}
	})
}
