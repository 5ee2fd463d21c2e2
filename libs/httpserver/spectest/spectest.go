// Package spectest holds a service's router and the OpenAPI document to the
// same set of routes. Each service serves a part of one shared spec; an
// operation says which services serve it in its x-services list. A test
// that calls CheckRoutes fails when a route is served without being
// documented, or documented for the service without being served.
package spectest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
)

// CheckRoutes compares the routes of router with the operations of the
// OpenAPI document at specPath whose x-services list names service. It
// reports, in one error per side, the routes served but missing from the
// spec and the operations specified but not served. It stops the test with
// Fatalf when the spec cannot be loaded or is invalid, or the router cannot
// be walked; an operation without an x-services list is an error too.
//
// chi patterns and OpenAPI paths spell parameters alike ({id}); a trailing
// "/*" of a mounted sub-router is dropped before comparing.
func CheckRoutes(tb testing.TB, router chi.Routes, specPath, service string) {
	tb.Helper()
	spec := mustSpecRoutes(tb, specPath, service)
	served := mustRouterRoutes(tb, router)

	var undocumented, unserved []string
	for _, r := range served {
		if !slices.Contains(spec, r) {
			undocumented = append(undocumented, r)
		}
	}
	for _, s := range spec {
		if !slices.Contains(served, s) {
			unserved = append(unserved, s)
		}
	}
	if len(undocumented) > 0 {
		tb.Errorf("routes served but missing from %s (or lacking x-services: [%s]):\n\t%s",
			specPath, service, strings.Join(undocumented, "\n\t"))
	}
	if len(unserved) > 0 {
		tb.Errorf("routes %s lists for the %s service but the router does not serve:\n\t%s",
			specPath, service, strings.Join(unserved, "\n\t"))
	}
}

// mustSpecRoutes loads the spec, validates it and returns "METHOD /path" for
// every operation whose x-services names service, sorted.
func mustSpecRoutes(tb testing.TB, path, service string) []string {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(path)
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

// mustRouterRoutes returns "METHOD /pattern" for every route of r, sorted.
func mustRouterRoutes(tb testing.TB, r chi.Routes) []string {
	tb.Helper()
	var out []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+strings.TrimSuffix(route, "/*"))
		return nil
	})
	if err != nil {
		tb.Fatalf("walk router: %v", err)
	}
	slices.Sort(out)
	return out
}
