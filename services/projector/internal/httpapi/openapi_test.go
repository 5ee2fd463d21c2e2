package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/projector/internal/httpapi"
)

// specPath is docs/openapi.yaml seen from this package.
const specPath = "../../../../docs/openapi.yaml"

// service is this service's name in the spec's x-services lists.
const service = "projector"

// TestRouter_MatchesOpenAPI holds the router and docs/openapi.yaml to the
// same set of routes: a route without a spec entry, or a spec entry for this
// service without a route, fails the test by name.
func TestRouter_MatchesOpenAPI(t *testing.T) {
	t.Parallel()
	spec := mustSpecRoutes(t, specPath, service)
	router := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop()})
	routes := mustRouterRoutes(t, router)

	for _, r := range routes {
		if !slices.Contains(spec, r) {
			t.Errorf("route %s is served but missing from docs/openapi.yaml (or lacks x-services: [%s])", r, service)
		}
	}
	for _, s := range spec {
		if !slices.Contains(routes, s) {
			t.Errorf("docs/openapi.yaml lists %s for the %s service, but the router does not serve it", s, service)
		}
	}
}

// mustSpecRoutes loads the spec, validates it and returns "METHOD /path" for
// every operation whose x-services names service.
func mustSpecRoutes(tb testing.TB, path, service string) []string {
	tb.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		tb.Fatalf("load %s: %v", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("validate %s: %v", path, err)
	}
	var out []string
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			names, ok := op.Extensions["x-services"].([]any)
			if !ok {
				tb.Errorf("%s %s: x-services is missing or not a list", method, p)
				continue
			}
			if slices.Contains(names, any(service)) {
				out = append(out, strings.ToUpper(method)+" "+p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// mustRouterRoutes returns "METHOD /pattern" for every route of r. chi
// patterns and OpenAPI paths spell parameters alike ({id}); a trailing
// "/*" of a mounted sub-router is dropped.
func mustRouterRoutes(tb testing.TB, r chi.Routes) []string {
	tb.Helper()
	var out []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/*")
		out = append(out, method+" "+route)
		return nil
	})
	if err != nil {
		tb.Fatalf("walk router: %v", err)
	}
	slices.Sort(out)
	return out
}
