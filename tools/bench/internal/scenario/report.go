package scenario

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
)

// Row is one line of the report. Zero fields print as "-".
type Row struct {
	Scenario string
	Clients  int
	// Rate is operations (or events) per second.
	Rate          float64
	P50, P95, P99 time.Duration
	Errors        uint64
	// Bound is the bound or target the row is compared with, as printed
	// ("9.1/s", "p99 50ms"); Ratio is Rate over a rate bound, or p99 over
	// a time bound (then lower is better). NaN prints as "-".
	Bound string
	Ratio float64
	Notes string
}

// fromResult fills a row's measurements from a load run.
func fromResult(name string, r *loadgen.Result) Row {
	return Row{
		Scenario: name, Clients: r.Clients, Rate: r.Throughput(),
		P50: r.Latency.Quantile(0.50), P95: r.Latency.Quantile(0.95), P99: r.Latency.Quantile(0.99),
		Errors: r.Errors(), Ratio: math.NaN(),
	}
}

// header are the table's columns.
var header = []string{"scenario", "clients", "throughput/s", "p50", "p95", "p99", "errors", "bound", "ratio", "notes"}

func (r Row) cells() []string {
	dash := func(ok bool, s string) string {
		if !ok {
			return "-"
		}
		return s
	}
	return []string{
		r.Scenario,
		dash(r.Clients > 0, fmt.Sprint(r.Clients)),
		dash(r.Rate > 0, formatRate(r.Rate)),
		dash(r.P50 > 0, formatDuration(r.P50)),
		dash(r.P95 > 0, formatDuration(r.P95)),
		dash(r.P99 > 0, formatDuration(r.P99)),
		fmt.Sprint(r.Errors),
		dash(r.Bound != "", r.Bound),
		dash(!math.IsNaN(r.Ratio) && !math.IsInf(r.Ratio, 0), fmt.Sprintf("%.2f", r.Ratio)),
		dash(r.Notes != "", r.Notes),
	}
}

// String is the row on one line, for progress output.
func (r Row) String() string {
	c := r.cells()
	var b strings.Builder
	for i, h := range header {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(h + "=" + c[i])
	}
	return b.String()
}

// WriteTable prints rows as an aligned text table.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	return tw.Flush()
}

// WriteMarkdown prints rows as a Markdown table.
func WriteMarkdown(w io.Writer, rows []Row) error {
	line := func(cells []string) string {
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		return "| " + strings.Join(cells, " | ") + " |\n"
	}
	var b strings.Builder
	b.WriteString(line(append([]string(nil), header...)))
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString(line(r.cells()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatRate prints a rate with three significant digits or more.
func formatRate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// formatDuration prints d in the unit that suits it, three significant
// digits.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
}

// rateBound prints a rate bound.
func rateBound(v float64) string { return formatRate(v) + "/s" }
