package scenario

import (
	"net"
	"testing"
)

// TestNextSource hands out loopback addresses past a /24 boundary: each is
// new, in 127.0.0.0/8 from 127.1.0.0 on, and none is the .0 or .255 of its
// /24.
func TestNextSource(t *testing.T) {
	seen := map[string]bool{}
	for range 600 {
		ip := nextSource().To4()
		if ip == nil || ip[0] != 127 || ip[1] == 0 || ip[3] == 0 || ip[3] == 255 {
			t.Fatalf("nextSource() = %v, want an address of 127.1.0.0 or above that is no .0 or .255", ip)
		}
		if seen[ip.String()] {
			t.Fatalf("nextSource() = %v twice", ip)
		}
		seen[ip.String()] = true
	}
	if !seen[net.IPv4(127, 1, 1, 1).String()] && !seen[net.IPv4(127, 1, 2, 1).String()] {
		t.Errorf("600 addresses never crossed into the next /24: %v", seen)
	}
}
