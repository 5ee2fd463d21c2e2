package faulttest_test

import (
	"testing"

	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// platform is an all-in-one process running in the test process.
type platform struct {
	authstream.Endpoints
	dbURL string
}

// mustPlatform starts authstream.Run on dbURL and a fresh data folder,
// every address on a free port, and stops it when the test ends.
func mustPlatform(tb testing.TB, dbURL string) *platform {
	tb.Helper()
	p := authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(map[string]string{"DATABASE_URL": dbURL, "AUTH_LOG_FORMAT": "json"}))
	return &platform{Endpoints: p.Endpoints, dbURL: dbURL}
}
