package metricstest

import (
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The operator files, from this package's directory.
var (
	alertsFile    = filepath.Join("..", "..", "..", "deployments", "prometheus", "alerts.yml")
	dashboardFile = filepath.Join("..", "..", "..", "deployments", "grafana", "authstream.json")
)

// metricNames parses a PromQL expression and returns the metric names its
// selectors name.
func metricNames(tb testing.TB, p parser.Parser, expr string) []string {
	tb.Helper()
	e, err := p.ParseExpr(expr)
	if err != nil {
		tb.Errorf("expression %q does not parse: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				tb.Errorf("expression %q selects series without naming a metric", expr)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// exported returns every series name the three services export after the
// workload.
func exported(w *workload) map[string]bool {
	out := map[string]bool{}
	for _, s := range w.after {
		maps.Copy(out, s.names())
	}
	return out
}

// TestAlertRules_nameExportedMetrics parses the alert rules as Prometheus
// loads them (rule file syntax, PromQL, annotation templates) and checks
// that every metric they name is exported by the running platform.
func TestAlertRules_nameExportedMetrics(t *testing.T) {
	w := mustWorkload(t)
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	have := exported(w)
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q of group %s: want an alert with a severity label and a summary", r.Alert+r.Record, g.Name)
			}
			for _, name := range metricNames(t, p, r.Expr) {
				if !have[name] {
					t.Errorf("alert %s names %s, which the platform does not export", r.Alert, name)
				}
			}
		}
	}
	if alerts < 10 {
		t.Errorf("%d alerts, want the lockout, shed, consistency, projection, quarantine, NATS and error alerts at least", alerts)
	}
}

// dashboard is what the test reads of the Grafana dashboard.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name, Type, Query string
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			Type, UID string
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard_nameExportedMetrics reads the dashboard as Grafana imports
// it (a Prometheus datasource chosen at import through the datasource
// variable) and checks that every target parses as PromQL and names
// metrics the running platform exports, and that it has the panels the
// operations guide promises.
func TestDashboard_nameExportedMetrics(t *testing.T) {
	w := mustWorkload(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Templating.List) == 0 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Fatalf("dashboard %q: want a uid, a title and a Prometheus datasource variable", d.Title)
	}
	p := parser.NewParser(parser.Options{})
	have := exported(w)
	var titles []string
	for _, panel := range d.Panels {
		titles = append(titles, panel.Title)
		if panel.Datasource.UID != "${"+d.Templating.List[0].Name+"}" || len(panel.Targets) == 0 {
			t.Errorf("panel %q: want targets on the datasource variable", panel.Title)
		}
		for _, target := range panel.Targets {
			// Grafana's own variables, as it substitutes them.
			expr := strings.ReplaceAll(target.Expr, "$__rate_interval", "1m")
			for _, name := range metricNames(t, p, expr) {
				if !have[name] {
					t.Errorf("panel %q names %s, which the platform does not export", panel.Title, name)
				}
			}
		}
	}
	for _, want := range []string{"Logins by result", "Tokens issued by grant", "Checks by answer", "Check cache hit ratio",
		"Commands by result", "Projection lag per partition", "Password hash queue", "PostgreSQL pools"} {
		if !slices.Contains(titles, want) {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}
}
