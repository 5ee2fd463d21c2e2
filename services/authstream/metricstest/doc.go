// Package metricstest holds the operator-signal tests of the all-in-one
// platform (DESIGN section 11.8): a workload of logins (successful, wrong,
// locked and rate-limited), commands (accepted, refused, conflicting),
// checks and consistency waits against a real platform, then the exact
// increments it must have left on each service's /metrics; every metric
// the alert rules (deployments/prometheus/alerts.yml) and the dashboard
// (deployments/grafana/authstream.json) name must be among what the
// platform exports; and no label value may carry a username, a password
// or a token. It has tests only.
package metricstest
