// Package backuptest checks backup and restore end to end: `authctl backup`
// of a running platform, `authctl restore` into a fresh NATS server, and the
// platform started again on the restored streams and an empty database,
// answering as before; and the NATS permissions of the backup user of
// deployments/nats/auth.conf.
//
// The package holds tests only. They run the authctl binary, built once by
// TestMain from services/authctl, as an operator would.
package backuptest
