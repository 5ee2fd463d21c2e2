// Package faulttest is the fault-injection part of the security and
// reliability suite (DESIGN section 10): it kills the all-in-one process
// with SIGKILL in the middle of a stream of commands, terminates every
// PostgreSQL connection under load, and stops the leader of a replicated
// event stream while writers append, and checks that every acknowledged
// command survives, exactly once, and that the projections equal a rebuild
// from the log.
//
// The package holds tests only. Its tests run one after the other: each
// starts a whole platform, which holds about twenty PostgreSQL connections.
package faulttest
