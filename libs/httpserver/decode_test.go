package httpserver_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

type registerBody struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	Profile  struct {
		Age int `json:"age"`
	} `json:"profile"`
}

func newJSONRequest(body, contentType string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/t/acme/users", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		contentType string
		opts        []httpserver.DecodeOption
		wantReason  string // "" = success
		wantMsg     string // substring of the message
		wantStatus  int    // status WriteError gives the error
	}{
		{name: "valid", body: `{"username":"ann","password":"pw","roles":["admin"]}`, contentType: "application/json"},
		{name: "charset and whitespace", body: " \n{\"username\":\"ann\"}\n ", contentType: "application/json; charset=utf-8"},
		{name: "+json type", body: `{}`, contentType: "application/merge-patch+json"},
		{name: "no content type", body: `{}`, wantReason: httpserver.ReasonUnsupportedMediaType,
			wantMsg: "Content-Type must be application/json", wantStatus: 415},
		{name: "form content type", body: `{}`, contentType: "application/x-www-form-urlencoded",
			wantReason: httpserver.ReasonUnsupportedMediaType, wantMsg: `not "application/x-www-form-urlencoded"`, wantStatus: 415},
		{name: "empty", body: "", contentType: "application/json", wantReason: httpserver.ReasonMalformedJSON,
			wantMsg: "request body is empty", wantStatus: 400},
		{name: "blank", body: "  \n", contentType: "application/json", wantReason: httpserver.ReasonMalformedJSON,
			wantMsg: "request body is empty", wantStatus: 400},
		{name: "unknown field", body: `{"username":"ann","passwrd":"pw"}`, contentType: "application/json",
			wantReason: httpserver.ReasonInvalidBody, wantMsg: `unknown field "passwrd"`, wantStatus: 400},
		{name: "too large", body: `{"username":"` + strings.Repeat("a", 100) + `"}`, contentType: "application/json",
			opts: []httpserver.DecodeOption{httpserver.WithMaxBytes(64)}, wantReason: httpserver.ReasonBodyTooLarge,
			wantMsg: "body exceeds 64 bytes", wantStatus: 413},
		{name: "default limit", body: `{"username":"` + strings.Repeat("a", 70000) + `"}`, contentType: "application/json",
			wantReason: httpserver.ReasonBodyTooLarge, wantMsg: "body exceeds 65536 bytes", wantStatus: 413},
		{name: "malformed", body: `{"username":"ann",,}`, contentType: "application/json",
			wantReason: httpserver.ReasonMalformedJSON, wantMsg: "malformed JSON at offset 18", wantStatus: 400},
		{name: "truncated", body: `{"username":"ann"`, contentType: "application/json",
			wantReason: httpserver.ReasonMalformedJSON, wantMsg: "malformed JSON at offset 17: unexpected end of body", wantStatus: 400},
		{name: "two values", body: `{"username":"a"} {"username":"b"}`, contentType: "application/json",
			wantReason: httpserver.ReasonMalformedJSON, wantMsg: "exactly one JSON value; unexpected data at offset 17", wantStatus: 400},
		{name: "trailing garbage", body: `{}x`, contentType: "application/json",
			wantReason: httpserver.ReasonMalformedJSON, wantMsg: "unexpected data at offset 2", wantStatus: 400},
		{name: "wrong type", body: `{"roles":"admin"}`, contentType: "application/json",
			wantReason: httpserver.ReasonInvalidBody, wantMsg: `field "roles" must be an array, got string`, wantStatus: 400},
		{name: "wrong nested type", body: `{"profile":{"age":"old"}}`, contentType: "application/json",
			wantReason: httpserver.ReasonInvalidBody, wantMsg: `field "profile.age" must be an integer, got string`, wantStatus: 400},
		{name: "wrong top-level type", body: `[1]`, contentType: "application/json",
			wantReason: httpserver.ReasonInvalidBody, wantMsg: "request body must be an object, got array", wantStatus: 400},
		{name: "too deep", body: strings.Repeat("[", 33) + strings.Repeat("]", 33), contentType: "application/json",
			wantReason: httpserver.ReasonMalformedJSON, wantMsg: "JSON nesting exceeds 32 levels at offset 32", wantStatus: 400},
		{name: "brackets in strings do not count", body: `{"username":"` + strings.Repeat("[{", 40) + `\""}`, contentType: "application/json"},
		{name: "custom depth", body: `{"profile":{"age":1}}`, contentType: "application/json",
			opts: []httpserver.DecodeOption{httpserver.WithMaxDepth(1)}, wantReason: httpserver.ReasonMalformedJSON,
			wantMsg: "nesting exceeds 1 levels at offset 11", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dst registerBody
			rec := httptest.NewRecorder()
			err := httpserver.DecodeJSON(rec, newJSONRequest(tt.body, tt.contentType), &dst, tt.opts...)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *fault.Error", err, err)
			}
			if fe.Code != fault.Invalid || fe.Reason != tt.wantReason {
				t.Errorf("code, reason = %s, %s; want invalid, %s", fe.Code, fe.Reason, tt.wantReason)
			}
			if !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.wantMsg)
			}
			rec = httptest.NewRecorder()
			httpserver.WriteError(rec, nil, nil, err)
			if rec.Code != tt.wantStatus {
				t.Errorf("WriteError status = %d, want %d", rec.Code, tt.wantStatus)
			}
		})
	}
}

func TestDecodeJSON_DecodesValues(t *testing.T) {
	t.Parallel()
	var dst registerBody
	body := `{"username":"ann","password":"pw","roles":["a","b"],"profile":{"age":30}}`
	if err := httpserver.DecodeJSON(httptest.NewRecorder(), newJSONRequest(body, "application/json"), &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Username != "ann" || dst.Password != "pw" || len(dst.Roles) != 2 || dst.Profile.Age != 30 {
		t.Errorf("decoded %+v", dst)
	}
}

func TestDecodeJSON_NonPointerIsInternal(t *testing.T) {
	t.Parallel()
	err := httpserver.DecodeJSON(httptest.NewRecorder(), newJSONRequest(`{}`, "application/json"), registerBody{})
	if fault.CodeOf(err) != fault.Internal {
		t.Errorf("code = %s, want internal (%v)", fault.CodeOf(err), err)
	}
}

func TestDecodeJSON_NoSecretInErrors(t *testing.T) {
	t.Parallel()
	// A password that breaks the syntax must not be echoed back.
	body := `{"username":"ann","password":"hunter2` + "\x01" + `"}`
	err := httpserver.DecodeJSON(httptest.NewRecorder(), newJSONRequest(body, "application/json"), &registerBody{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %v", err)
	}
}

// TestDecodeJSONFast: the fast decoder sees only bodies that passed the
// content type and size checks, and what it refuses is decoded (or
// refused) as DecodeJSON does.
func TestDecodeJSONFast(t *testing.T) {
	t.Parallel()
	type pair struct {
		A string `json:"a"`
	}
	// fast takes exactly `{"a":"fast"}`, decoding it as "fast!" so that the
	// test sees which decoder ran.
	tests := []struct {
		name, body, contentType string
		opts                    []httpserver.DecodeOption
		want                    string
		wantReason              string
	}{
		{name: "taken by fast", body: `{"a":"fast"}`, contentType: "application/json", want: "fast!"},
		{name: "refused by fast, decoded", body: `{"a":"slow"}`, contentType: "application/json", want: "slow"},
		{name: "refused by fast, invalid", body: `{"b":"x"}`, contentType: "application/json", wantReason: httpserver.ReasonInvalidBody},
		{name: "content type checked first", body: `{"a":"fast"}`, contentType: "text/plain", wantReason: httpserver.ReasonUnsupportedMediaType},
		{name: "size checked first", body: `{"a":"fast"}`, contentType: "application/json", opts: []httpserver.DecodeOption{httpserver.WithMaxBytes(4)}, wantReason: httpserver.ReasonBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst pair
			sawFast := false
			fast := func(body []byte) bool {
				sawFast = true
				if string(body) != `{"a":"fast"}` {
					return false
				}
				dst.A = "fast!"
				return true
			}
			err := httpserver.DecodeJSONFast(httptest.NewRecorder(), newJSONRequest(tt.body, tt.contentType), &dst, fast, tt.opts...)
			if tt.wantReason != "" {
				if fault.ReasonOf(err) != tt.wantReason {
					t.Fatalf("err = %v, want reason %s", err, tt.wantReason)
				}
				if tt.contentType != "application/json" || tt.opts != nil {
					if sawFast {
						t.Fatal("fast saw a body that failed the checks")
					}
				}
				return
			}
			if err != nil || dst.A != tt.want || !sawFast {
				t.Fatalf("dst %+v, err %v, fast ran %v; want %q", dst, err, sawFast, tt.want)
			}
		})
	}
}
