package metricstest

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// scrape is one reading of a service's /metrics, parsed.
type scrape map[string]*dto.MetricFamily

// mustScrape reads base/metrics and parses it as Prometheus reads it.
func mustScrape(tb testing.TB, p *authstreamtest.Platform, base string) scrape {
	tb.Helper()
	res := p.Do(tb, http.MethodGet, base+"/metrics", "", "", nil, http.StatusOK)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(res.Body))
	if err != nil {
		tb.Fatalf("parse %s/metrics: %v", base, err)
	}
	return fams
}

// labels is a series' label set, written name=value pairs.
type labels map[string]string

// series returns the value of the series of family name whose labels are
// exactly want, and whether there is one. A histogram's value is its
// count.
func (s scrape) series(name string, want labels) (float64, bool) {
	fam, ok := s[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		got := labels{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if !maps.Equal(got, want) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// sum adds the values of the series of family name whose labels include
// every pair of match.
func (s scrape) sum(name string, match labels) float64 {
	total := 0.0
	fam, ok := s[name]
	if !ok {
		return 0
	}
	for _, m := range fam.GetMetric() {
		got := labels{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range match {
			matches = matches && got[k] == v
		}
		if !matches {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

// mustSeries is series that fails the test when there is none.
func (s scrape) mustSeries(tb testing.TB, name string, want labels) float64 {
	tb.Helper()
	v, ok := s.series(name, want)
	if !ok {
		tb.Fatalf("/metrics has no series %s%v; it has:\n%s", name, want, s.describe(name))
	}
	return v
}

// describe lists the series of family name, for failures.
func (s scrape) describe(name string) string {
	fam, ok := s[name]
	if !ok {
		return "  (no family " + name + ")"
	}
	var b strings.Builder
	for _, m := range fam.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		fmt.Fprintf(&b, "  %s{%s}\n", name, strings.Join(ls, ","))
	}
	return b.String()
}

// names returns every series name the scrape holds: the families, and
// for histograms and summaries the _bucket, _sum and _count series
// Prometheus stores.
func (s scrape) names() map[string]bool {
	out := map[string]bool{}
	for name, fam := range s {
		out[name] = true
		switch fam.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}

// labelValues returns every label value of every series, by where it was
// found, for the leak check.
func (s scrape) labelValues() map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(s)) {
		for i, m := range s[name].GetMetric() {
			for _, l := range m.GetLabel() {
				out[fmt.Sprintf("%s series %d label %s", name, i, l.GetName())] = l.GetValue()
			}
		}
	}
	return out
}

// delta is an expected increment of one series between two scrapes.
type delta struct {
	name   string
	labels labels
	want   float64
}

// checkDeltas fails the test for every series whose increment from
// before to after is not the one expected.
func checkDeltas(tb testing.TB, before, after scrape, deltas []delta) {
	tb.Helper()
	for _, d := range deltas {
		b, _ := before.series(d.name, d.labels)
		a := after.mustSeries(tb, d.name, d.labels)
		if a-b != d.want {
			tb.Errorf("%s%v went from %v to %v: +%v, want +%v", d.name, d.labels, b, a, a-b, d.want)
		}
	}
}
