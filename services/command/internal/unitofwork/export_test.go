package unitofwork

import "context"

// AwaitReadAhead waits for the read started for the request of ctx for k
// (ReadAhead) to end, leaving it to be taken.
func AwaitReadAhead(ctx context.Context, k Key) {
	rs, ok := ctx.Value(readsKey{}).(*requestReads)
	if !ok {
		return
	}
	rs.mu.Lock()
	p, ok := rs.m[k]
	rs.mu.Unlock()
	if ok {
		<-p.done
	}
}
