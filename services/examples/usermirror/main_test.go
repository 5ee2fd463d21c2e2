package main

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/authstream/authstream/libs/eventstore/natstest"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", map[string]string{"DATABASE_URL": "postgres://db"},
			config{DatabaseURL: "postgres://db", NATSURL: "nats://127.0.0.1:4250", Consumer: "usermirror", Filter: "auth.evt.*.user.>"}, ""},
		{"credentials apart from the URL", map[string]string{"DATABASE_URL": "postgres://db", "AUTH_NATS_USER": "subscriber", "AUTH_NATS_PASSWORD": "pw"},
			config{DatabaseURL: "postgres://db", NATSURL: "nats://127.0.0.1:4250", NATSUser: "subscriber", NATSPassword: "pw", Consumer: "usermirror", Filter: "auth.evt.*.user.>"}, ""},
		{"no database", map[string]string{}, config{}, "DATABASE_URL"},
		{"a user without a password", map[string]string{"DATABASE_URL": "postgres://db", "AUTH_NATS_USER": "subscriber"}, config{}, "AUTH_NATS_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("configFromEnv = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("configFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestConnect runs against a server that, like authstream's, refuses
// clients without credentials.
func TestConnect(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServerWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "subscriber", Password: "s3cret-pw"}}
	})
	withUser := strings.Replace(url, "nats://", "nats://subscriber:s3cret-pw@", 1)
	for _, tc := range []struct {
		name string
		cfg  config
		ok   bool
	}{
		{"credentials in the URL", config{NATSURL: withUser}, true},
		{"credentials apart", config{NATSURL: url, NATSUser: "subscriber", NATSPassword: "s3cret-pw"}, true},
		{"no credentials", config{NATSURL: url}, false},
		{"a wrong password", config{NATSURL: url, NATSUser: "subscriber", NATSPassword: "wrong"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := connect(tc.cfg)
			if tc.ok {
				if err != nil {
					t.Fatalf("connect = %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("connected without valid credentials")
			}
			if !strings.Contains(err.Error(), "AUTH_NATS_URL") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("connect = %v, want an error saying where credentials go, without the password", err)
			}
		})
	}
}
