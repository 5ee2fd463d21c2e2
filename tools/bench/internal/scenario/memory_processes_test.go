package scenario

import (
	"math"
	"testing"
)

func TestNATSHeapHolders(t *testing.T) {
	t.Parallel()
	// Two records at a sampling rate of 512 KiB (the header gives twice
	// it): one allocated under the subject tree, one under the
	// de-duplication map with the subject tree further out (the holder
	// listed first decides), and one of the runtime's alone.
	profile := []byte(`heap profile: 3: 3145728 [9: 9437184] @ heap/1048576
1: 1048576 [2: 2097152] @ 0x1 0x2
#	0x1	github.com/nats-io/nats-server/v2/server/stree.(*SubjectTree[...]).Insert+0x2d	/x/stree.go:1
#	0x2	github.com/nats-io/nats-server/v2/server.(*fileStore).storeRawMsg+0x10	/x/filestore.go:1

1: 1048576 [1: 1048576] @ 0x3 0x4
#	0x3	github.com/nats-io/nats-server/v2/server.(*stream).storeMsgIdLocked+0x1	/x/stream.go:1
#	0x4	github.com/nats-io/nats-server/v2/server/stree.(*SubjectTree[...]).Insert+0x2d	/x/stree.go:1

1: 1048576 [1: 1048576] @ 0x5
#	0x5	runtime.malg+0x1	/x/proc.go:1

# runtime.MemStats
# Alloc = 1
`)
	holders, total := natsHeapHolders(profile)
	// One object of 1 MiB sampled at 512 KiB: scaled by 1/(1-e^-2).
	one := int64(float64(1<<20) / (1 - math.Exp(-2)))
	want := map[string]int64{"per-subject index": one, "de-duplication window": one, "runtime, other": one}
	if len(holders) != len(want) {
		t.Fatalf("holders %v, want %v", holders, want)
	}
	for _, h := range holders {
		if h.bytes != want[h.name] {
			t.Errorf("%s = %d, want %d", h.name, h.bytes, want[h.name])
		}
	}
	if total != 3*one {
		t.Errorf("total %d, want %d", total, 3*one)
	}
}
