package scenario

import (
	"encoding/binary"
	"net"
	"sync/atomic"
)

// sources counts the loopback addresses handed out.
var sources atomic.Uint32

// nextSource returns a loopback address no client of this run has used,
// from 127.1.0.1 on (127.0.0.0/8 is all loopback on Linux), skipping the
// .0 and .255 of each /24.
func nextSource() net.IP {
	for {
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], sources.Add(1)+1<<16)
		if ip[3] == 0 || ip[3] == 255 {
			continue
		}
		return net.IPv4(127, ip[1], ip[2], ip[3])
	}
}
