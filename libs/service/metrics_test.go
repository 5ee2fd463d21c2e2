package service_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/libs/telemetry"
)

func TestReadMetricsTenants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    []string
		problem bool
	}{
		{"unset", nil, nil, false},
		{"empty", map[string]string{"AUTH_METRICS_TENANTS": ""}, nil, false},
		{"two", map[string]string{"AUTH_METRICS_TENANTS": "acme, globex"}, []string{"acme", "globex"}, false},
		{"repeated", map[string]string{"AUTH_METRICS_TENANTS": "acme,acme,"}, []string{"acme"}, false},
		{"not a slug", map[string]string{"AUTH_METRICS_TENANTS": "acme,Not A Slug"}, nil, true},
		{"too many", map[string]string{"AUTH_METRICS_TENANTS": manyTenants(101)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := config.NewReader(config.Map(tt.env))
			got := service.ReadMetricsTenants(r)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ReadMetricsTenants = %q, want %q", got, tt.want)
			}
			if err := r.Err(); (err != nil) != tt.problem || (err != nil && !strings.Contains(err.Error(), "AUTH_METRICS_TENANTS")) {
				t.Errorf("Err = %v, want a problem naming AUTH_METRICS_TENANTS: %v", err, tt.problem)
			}
		})
	}
}

func manyTenants(n int) string {
	var out []string
	for i := range n {
		out = append(out, "tenant-"+strconv.Itoa(i))
	}
	return strings.Join(out, ",")
}

// TestStart_reportsConnections starts two services on one telemetry, as
// the all-in-one binary does, and reads the registry: each reports its
// NATS connection and its pool under its own service label, the pool's
// acquires count what the service did, a closed service stops reporting,
// and a lost NATS connection reads 0.
func TestStart_reportsConnections(t *testing.T) {
	t.Parallel()
	ns, url := natstest.RunServer(t)
	tel := telemetry.Nop()
	db := config.Secret(pgtest.URL(t))
	withPool, err := service.Start(t.Context(), service.Common{Addr: "127.0.0.1:0", NATSURL: url, LogOut: io.Discard, Telemetry: tel.With("query"),
		MetricsTenants: []string{"acme"}},
		service.Spec{Name: "query", AddrVar: "AUTH_TEST_ADDR", Database: true, DatabaseURL: db})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer withPool.Close()
	if kv, ok := withPool.Telemetry.MetricTenant("acme"); !ok || kv.Value.AsString() != "acme" {
		t.Errorf("MetricTenant(acme) = %v %v, want the allow-list of Common applied", kv, ok)
	}
	without, err := service.Start(t.Context(), service.Common{Addr: "127.0.0.1:0", NATSURL: url, LogOut: io.Discard, Telemetry: tel.With("command")},
		service.Spec{Name: "command", AddrVar: "AUTH_TEST_ADDR"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	for range 3 {
		if err := withPool.Pool.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	m := scrape(t, tel)
	for _, want := range []string{
		`authstream_nats_connected{service="query"} 1`,
		`authstream_nats_connected{service="command"} 1`,
		`authstream_nats_reconnects_total{service="query"} 0`,
		`authstream_db_pool_max_connections{service="query"} `,
		`authstream_db_pool_connections{service="query",state="idle"} `,
		`authstream_db_pool_connections{service="query",state="acquired"} 0`,
		`authstream_db_pool_empty_acquires_total{service="query"} `,
		`authstream_db_pool_canceled_acquires_total{service="query"} 0`,
		`authstream_db_pool_new_connections_total{service="query"} `,
		`authstream_db_pool_acquire_duration_seconds_total{service="query"} `,
		`authstream_db_pool_empty_acquire_wait_seconds_total{service="query"} `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, `authstream_db_pool_max_connections{service="command"}`) {
		t.Error("a service without a pool reports pool statistics")
	}
	if n := sample(t, m, `authstream_db_pool_acquires_total{service="query"}`); n < 3 {
		t.Errorf("acquires = %v after three pings, want at least 3", n)
	}

	if err := without.Close(); err != nil {
		t.Fatal(err)
	}
	if m := scrape(t, tel); strings.Contains(m, `service="command"`) {
		t.Error("a closed service still reports its connections")
	}
	ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for sample(t, scrape(t, tel), `authstream_nats_connected{service="query"}`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("authstream_nats_connected stays 1 with the NATS server down")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(tb testing.TB, tel *telemetry.Telemetry) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// sample returns the value of the series named exactly series, failing
// when there is none.
func sample(tb testing.TB, metrics, series string) float64 {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		tb.Fatalf("/metrics has no series %s", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
