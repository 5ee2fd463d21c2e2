package receiver_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/examples/webhookreceiver/internal/receiver"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func sign(key, id, ts string, body []byte) string {
	k, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whsec_"))
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TestReceiver_Verify checks the Standard Webhooks specification's own
// example, then the refusals.
func TestReceiver_Verify(t *testing.T) {
	t.Parallel()
	r, err := receiver.New([]string{secret}, 10, func(receiver.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// The specification's example is at 1614265330: verify it with a
	// clock there.
	spec := `{"test": 2432232314}`
	if err := receiver.VerifyAt(r, time.Unix(1614265330, 0), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(spec)); err != nil {
		t.Fatalf("the specification's example: %v", err)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	body := []byte(`{"id":"e1"}`)
	for _, tt := range []struct {
		name, id, ts, sig string
		body              []byte
		ok                bool
	}{
		{"valid", "e1", now, sign(secret, "e1", now, body), body, true},
		{"valid among others", "e1", now, "v1,AAAA " + sign(secret, "e1", now, body), body, true},
		{"tampered body", "e1", now, sign(secret, "e1", now, body), []byte(`{"id":"e2"}`), false},
		{"other id", "e2", now, sign(secret, "e1", now, body), body, false},
		{"stale", "e1", stale, sign(secret, "e1", stale, body), body, false},
		{"other key", "e1", now, sign("whsec_b3RoZXIga2V5", "e1", now, body), body, false},
		{"no signature", "e1", now, "", body, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Verify(tt.id, tt.ts, tt.sig, tt.body); (err == nil) != tt.ok {
				t.Fatalf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestReceiver_ServeHTTP_deduplicates handles an event once however often
// it is delivered, and again after a failed handling.
func TestReceiver_ServeHTTP_deduplicates(t *testing.T) {
	t.Parallel()
	var handled []string
	fail := true
	r, err := receiver.New([]string{secret}, 2, func(e receiver.Event) error {
		if e.ID == "e3" && fail {
			fail = false
			return errors.New("database down")
		}
		handled = append(handled, e.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(id string) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		body := []byte(`{"id":"` + id + `","type":"user.registered"}`)
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", sign(secret, id, ts, body))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	for _, step := range []struct {
		id   string
		want int
	}{{"e1", 204}, {"e1", 204}, {"e2", 204}, {"e3", 500}, {"e3", 204}, {"e3", 204}} {
		if got := post(step.id); got != step.want {
			t.Fatalf("POST %s = %d, want %d", step.id, got, step.want)
		}
	}
	if strings.Join(handled, ",") != "e1,e2,e3" {
		t.Fatalf("handled %v", handled)
	}
}
