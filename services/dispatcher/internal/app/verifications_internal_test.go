package app

import "testing"

// TestMayHaveEmail checks that the look before opening never skips a
// payload with an email member, however its name is spelled.
func TestMayHaveEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"no address", `{"credential":{"kid":"k"},"username":{"sealed":"x"}}`, false},
		{"empty", `{}`, false},
		{"clear address", `{"email":"ann@example.com","username":"ann"}`, true},
		{"sealed address", `{"email":{"kid":"k","nonce":"bm9uY2U","ciphertext":"Y2lwaGVy"}}`, true},
		{"space before the colon", `{"email" : "ann@example.com"}`, true},
		{"escaped name", `{"e\u006dail":"ann@example.com"}`, true},
		{"the word in a value", `{"username":"email"}`, true},
		{"a longer name", `{"emails":["a@example.com"]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayHaveEmail([]byte(tt.data)); got != tt.want {
				t.Fatalf("mayHaveEmail(%s) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}
