package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/service"
)

func TestReadCommon(t *testing.T) {
	t.Parallel()
	r := config.NewReader(config.Map(map[string]string{
		"AUTH_TEST_ADDR": "127.0.0.1:9999",
		"AUTH_NATS_URL":  "nats://a:4222, nats://b:4222",
		"AUTH_LOG_LEVEL": "loud",
	}))
	c := service.ReadCommon(r, "AUTH_TEST_ADDR", "127.0.0.1:1")
	if c.Addr != "127.0.0.1:9999" || c.NATSURL != "nats://a:4222,nats://b:4222" || c.LogFormat != "json" {
		t.Errorf("ReadCommon = %+v", c)
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "AUTH_LOG_LEVEL") {
		t.Errorf("Err = %v, want a problem naming AUTH_LOG_LEVEL", err)
	}
}

func TestCommon_Check(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    service.Common
		want []string
	}{
		{"complete", service.Common{Addr: "127.0.0.1:0", NATSURL: "nats://x:4222"}, nil},
		{"no nats", service.Common{Addr: "127.0.0.1:0"}, []string{"AUTH_NATS_URL"}},
		{"bad address", service.Common{Addr: "nowhere", NATSURL: "nats://x:4222"}, []string{"AUTH_TEST_ADDR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := config.NewReader(nil)
			tt.c.Check(r, "AUTH_TEST_ADDR")
			err := r.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v, want nothing", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Check: %v, want a problem naming %s", err, w)
				}
			}
		})
	}
}

func TestStart_busyPortNamesTheVariable(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, url := natstest.RunServer(t)
	_, err = service.Start(t.Context(), service.Common{Addr: taken.Addr().String(), NATSURL: url, LogOut: io.Discard},
		service.Spec{Name: "test", AddrVar: "AUTH_TEST_ADDR"})
	if err == nil || !strings.HasPrefix(err.Error(), "AUTH_TEST_ADDR: ") {
		t.Fatalf("Start on a busy port: %v, want an error starting with AUTH_TEST_ADDR", err)
	}
}

func TestStart_unreachableNATSClosesTheListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String() // a port nobody serves NATS on once closed
	ln.Close()
	_, err = service.Start(t.Context(), service.Common{Addr: "127.0.0.1:0", NATSURL: "nats://" + dead, LogOut: io.Discard},
		service.Spec{Name: "test", AddrVar: "AUTH_TEST_ADDR"})
	if err == nil || !strings.HasPrefix(err.Error(), "AUTH_NATS_URL: ") {
		t.Fatalf("Start: %v, want an error starting with AUTH_NATS_URL", err)
	}
}

func TestRuntime_serveAndReady(t *testing.T) {
	t.Parallel()
	ns, url := natstest.RunServer(t)
	gate := errors.New("bootstrap admin not projected yet")
	addrs := make(chan string, 1)
	rt, err := service.Start(t.Context(), service.Common{
		Addr: "127.0.0.1:0", NATSURL: url, LogOut: io.Discard,
		OnListening: func(a string) { addrs <- a },
		Ready:       func(context.Context) error { return gate },
	}, service.Spec{Name: "test", AddrVar: "AUTH_TEST_ADDR", Database: true, DatabaseURL: config.Secret(pgtest.URL(t))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ready := rt.Ready(httpserver.Check{Name: "own", Check: func(context.Context) error { return nil }})
	if err := ready(t.Context()); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Errorf("Ready with the gate closed = %v, want a failure naming platform", err)
	}
	gate = nil
	if err := ready(t.Context()); err != nil {
		t.Errorf("Ready with everything up = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- rt.Serve(ctx, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	}()
	addr := <-addrs
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d, want the handler's 418", res.StatusCode)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v after the context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}

	ns.Shutdown()
	if err := ready(t.Context()); err == nil || !strings.Contains(err.Error(), "nats") {
		t.Errorf("Ready with NATS down = %v, want a failure naming nats", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rt.Pool.Ping(t.Context()); err == nil {
		t.Error("the pool Start opened is still open after Close")
	}
}
