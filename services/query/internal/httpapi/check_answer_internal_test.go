package httpapi

import (
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
