package faulttest_test

import (
	"net/http"
	"testing"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// mustPlatform starts authstream.Run on dbURL and a fresh data folder,
// every address on a free port, and stops it when the test ends.
func mustPlatform(tb testing.TB, dbURL string) *authstreamtest.Platform {
	tb.Helper()
	p := authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(map[string]string{"DATABASE_URL": dbURL, "AUTH_LOG_FORMAT": "json"}))
	p.HTTP = &http.Client{Timeout: httpTimeout}
	return p
}
