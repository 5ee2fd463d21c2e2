package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tailSize is how many events the live tail shows; tailRefresh how often
// the page reloads itself (a <meta http-equiv="refresh">: the CSP allows
// no script).
const (
	tailSize    = 50
	tailRefresh = 5
)

// tailEvent is an event of the feed as the tail shows it.
type tailEvent struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Aggregate   string    `json:"aggregate"`
	AggregateID string    `json:"aggregate_id"`
	Version     uint64    `json:"version"`
	OccurredAt  time.Time `json:"occurred_at"`
	Actor       struct {
		Tenant string `json:"tenant"`
		Sub    string `json:"sub"`
	} `json:"actor"`
}

// tailData is the live tail's page.
type tailData struct {
	Events          []tailEvent // newest first
	Type, Aggregate string      // the filters
	Paused          bool        // the page does not reload itself
	Refresh         int
}

// events is the live tail: the tenant's latest events (GET /events, JSON
// lines, without follow), newest first, reloaded every few seconds.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	in := r.URL.Query()
	d := tailData{Type: strings.TrimSpace(in.Get("type")), Aggregate: strings.TrimSpace(in.Get("aggregate")),
		Paused: in.Get("paused") == "1", Refresh: tailRefresh}
	q := url.Values{}
	if d.Type != "" {
		q.Set("type", d.Type)
	}
	if d.Aggregate != "" {
		q.Set("aggregate", d.Aggregate)
	}
	evs, err := c.clientOf(r).feed(r, q, tailSize)
	var refused *apiError
	if err != nil && !errors.As(err, &refused) {
		// The feed broke off (or sent what it should not): say so, and
		// try again as the page would.
		c.log.WarnContext(r.Context(), "console: event feed", "error", err.Error())
		c.page(w, r, "error.html", view{Title: "Live events", Section: "/events", Status: http.StatusBadGateway,
			Error: "The event feed broke off. The page tries again in a few seconds.", Refresh: tailRefresh})
		return
	}
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	d.Events = evs
	v := view{Title: "Live events", Section: "/events", Data: d}
	if !d.Paused {
		v.Refresh = tailRefresh
	}
	c.page(w, r, "events.html", v)
}

// feed reads the tenant's event feed to its end and returns its last
// keep events, newest first.
func (k client) feed(r *http.Request, q url.Values, keep int) ([]tailEvent, error) {
	u := k.c.issuer(k.s.Tenant) + "/events"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+k.s.Access)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := k.c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		e := &apiError{Status: res.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
		_ = json.Unmarshal(b, e)
		return nil, e
	}
	ring := make([]tailEvent, keep)
	n := 0
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			var l struct {
				Event tailEvent `json:"event"`
			}
			if jerr := json.Unmarshal(line, &l); jerr != nil {
				return nil, fmt.Errorf("GET %s: decode: %w", u, jerr)
			}
			ring[n%keep] = l.Event
			n++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
	}
	out := make([]tailEvent, 0, min(n, keep))
	for i := n - 1; i >= 0 && i >= n-keep; i-- {
		out = append(out, ring[i%keep])
	}
	return out, nil
}
