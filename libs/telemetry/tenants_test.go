package telemetry_test

import (
	"slices"
	"testing"

	"github.com/authstream/authstream/libs/telemetry"
)

func TestTelemetry_MetricTenant(t *testing.T) {
	t.Parallel()
	base := telemetry.Nop()
	listed := base.WithMetricTenants([]string{"globex", "acme"})
	tests := []struct {
		name   string
		tel    *telemetry.Telemetry
		tenant string
		want   bool
	}{
		{"no allow-list", base, "acme", false},
		{"listed", listed, "acme", true},
		{"not listed", listed, "initech", false},
		{"kept by With", listed.With("query"), "globex", true},
		{"emptied", listed.WithMetricTenants(nil), "acme", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kv, ok := tt.tel.MetricTenant(tt.tenant)
			if ok != tt.want {
				t.Fatalf("MetricTenant(%q) ok = %v, want %v", tt.tenant, ok, tt.want)
			}
			if ok && (string(kv.Key) != telemetry.TenantLabel || kv.Value.AsString() != tt.tenant) {
				t.Errorf("MetricTenant(%q) = %v, want tenant=%s", tt.tenant, kv, tt.tenant)
			}
		})
	}
	if got := listed.MetricTenants(); !slices.Equal(got, []string{"acme", "globex"}) {
		t.Errorf("MetricTenants = %q, want the sorted allow-list", got)
	}
	if _, ok := base.MetricTenant("acme"); ok {
		t.Error("WithMetricTenants changed the view it was called on")
	}
}
