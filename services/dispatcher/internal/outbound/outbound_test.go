package outbound_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/dispatcher/internal/outbound"
)

// TestPublic_refusesNonPublicAddresses is the SSRF table of the addresses
// a delivery must never reach.
func TestPublic_refusesNonPublicAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		public bool
	}{
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"169.254.0.1", false},
		{"0.0.0.0", false},
		{"100.64.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::1", false},
		{"::", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd00:ec2::254", false}, // AWS metadata over IPv6
		{"64:ff9b::7f00:1", false},
		{"8.8.8.8", true},
		{"93.184.216.34", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:8.8.8.8", true},
	}
	for _, tt := range tests {
		if got := outbound.Public(netip.MustParseAddr(tt.addr)); got != tt.public {
			t.Errorf("Public(%s) = %v, want %v", tt.addr, got, tt.public)
		}
	}
}

// TestClient_Post_refusedWithoutTheFlag posts to receivers on loopback
// (by address, by IPv6, and through a DNS name resolving to loopback) and
// to a URL that is not https: refused at connect time, the receiver never
// reached. With the flag the same posts go through.
func TestClient_Post_refusedWithoutTheFlag(t *testing.T) {
	t.Parallel()
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits++ }))
	defer srv.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits++ }))
	defer tls.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(tls.URL, "https://"))
	strict := outbound.New(outbound.Options{})
	tests := []struct {
		name, url string
		want      error
	}{
		{"loopback", tls.URL, outbound.ErrRefusedAddress},
		{"localhost name", "https://localhost:" + port + "/", outbound.ErrRefusedAddress},
		{"IPv6 loopback", "https://[::1]:" + port + "/", outbound.ErrRefusedAddress},
		{"mapped loopback", "https://[::ffff:127.0.0.1]:" + port + "/", outbound.ErrRefusedAddress},
		{"private", "https://10.0.0.1:" + port + "/", outbound.ErrRefusedAddress},
		{"metadata", "https://169.254.169.254/latest/meta-data/", outbound.ErrRefusedAddress},
		{"plain http", srv.URL, outbound.ErrRefusedURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := strict.Post(context.Background(), tt.url, nil, []byte("{}"))
			if err == nil || res.Status != 0 {
				t.Fatalf("delivered: %+v, %v", res, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if hits != 0 {
		t.Fatalf("a refused delivery reached the receiver %d times", hits)
	}
	open := outbound.New(outbound.Options{AllowPrivate: true})
	if res, err := open.Post(context.Background(), srv.URL, nil, []byte("{}")); err != nil || !res.OK() {
		t.Fatalf("with the flag: %+v, %v", res, err)
	}
}

// TestClient_Post_noRedirect counts a redirect as an answer that is not
// a success, and never follows it.
func TestClient_Post_noRedirect(t *testing.T) {
	t.Parallel()
	followed := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res, err := outbound.New(outbound.Options{AllowPrivate: true}).Post(context.Background(), srv.URL, nil, []byte("{}"))
	if err != nil || res.Status != http.StatusTemporaryRedirect || res.OK() || followed {
		t.Fatalf("redirect: %+v, %v, followed %v", res, err, followed)
	}
}
