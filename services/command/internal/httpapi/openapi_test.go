package httpapi_test

import (
	"testing"

	"github.com/authstream/authstream/libs/httpserver/spectest"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// TestRouter_MatchesOpenAPI holds the router and docs/openapi.yaml to the
// same set of routes: a route without a spec entry, or a spec entry for this
// service without a route, fails the test by name.
func TestRouter_MatchesOpenAPI(t *testing.T) {
	t.Parallel()
	router := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop()})
	spectest.CheckRoutes(t, router, "../../../../docs/openapi.yaml", "command")
}
