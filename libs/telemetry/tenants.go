package telemetry

import (
	"slices"

	"go.opentelemetry.io/otel/attribute"
)

// TenantLabel is the name of the label that the tenants of the allow-list
// (WithMetricTenants) add to the services' domain metrics.
const TenantLabel = "tenant"

// WithMetricTenants returns a view of t whose MetricTenant labels the
// measurements of the named tenants, and of no other. The services' domain
// metrics (logins, checks, commands...) carry no tenant label by default: a
// platform of ten thousand tenants would make ten thousand series of each.
// An operator who must watch a few tenants apart (the largest customers, a
// tenant under attack) names them in AUTH_METRICS_TENANTS; every other
// tenant stays in the unlabelled series. An empty list turns the labels
// off again. The view shares t's providers and registry.
func (t *Telemetry) WithMetricTenants(tenants []string) *Telemetry {
	c := *t
	c.metricTenants = nil
	if len(tenants) > 0 {
		c.metricTenants = make(map[string]attribute.KeyValue, len(tenants))
		for _, tenant := range tenants {
			c.metricTenants[tenant] = attribute.String(TenantLabel, tenant)
		}
	}
	return &c
}

// MetricTenants returns the allow-list of WithMetricTenants, sorted.
func (t *Telemetry) MetricTenants() []string {
	out := make([]string, 0, len(t.metricTenants))
	for tenant := range t.metricTenants {
		out = append(out, tenant)
	}
	slices.Sort(out)
	return out
}

// MetricTenant returns the tenant label of tenant's measurements, and
// false when the allow-list does not name tenant: its measurements then
// go to the series without a tenant label.
func (t *Telemetry) MetricTenant(tenant string) (attribute.KeyValue, bool) {
	if t.metricTenants == nil {
		return attribute.KeyValue{}, false
	}
	kv, ok := t.metricTenants[tenant]
	return kv, ok
}
