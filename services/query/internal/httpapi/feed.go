package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/app"
)

// FeedWriteTimeout is how long a feed's client has to take each batch: a
// reader slower than that is disconnected, and resumes with the cursor of
// the last event it received.
const FeedWriteTimeout = 10 * time.Second

// The media types of the feed: Server-Sent Events, or newline-delimited
// JSON when the client accepts it.
const (
	ContentTypeSSE    = "text/event-stream"
	ContentTypeNDJSON = "application/x-ndjson"
)

// feed is GET /events?after=&type=&aggregate=&aggregate_id=&follow=: the
// tenant's account events in stream order from just past the cursor, as
// Server-Sent Events (id: the cursor, data: the envelope) or, with Accept:
// application/x-ndjson, JSON lines {"cursor", "event"}. An SSE client's
// Last-Event-ID resumes it too.
func (h *handlers) feed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := app.FeedRequest{
		After: q.Get("after"), Aggregate: q.Get("aggregate"), AggregateID: q.Get("aggregate_id"),
		Follow: q.Get("follow") == "true",
	}
	if req.After == "" {
		req.After = r.Header.Get("Last-Event-ID")
	}
	for _, t := range q["type"] {
		for p := range strings.SplitSeq(t, ",") {
			if p != "" {
				req.Types = append(req.Types, p)
			}
		}
	}
	f, err := h.app.OpenFeed(r.Context(), callerOf(r), req)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	ndjson := strings.Contains(r.Header.Get("Accept"), ContentTypeNDJSON)
	rc := http.NewResponseController(w)
	if ndjson {
		w.Header().Set("Content-Type", ContentTypeNDJSON)
	} else {
		w.Header().Set("Content-Type", ContentTypeSSE)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = rc.SetWriteDeadline(time.Now().Add(h.feedWrite))
	w.WriteHeader(http.StatusOK)
	if !ndjson {
		// EventSource clients reconnect after a second with Last-Event-ID.
		_, _ = w.Write([]byte("retry: 1000\n\n"))
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	each := func(it app.FeedItem) error {
		if ndjson {
			return enc.Encode(it)
		}
		if _, err := w.Write([]byte("id: " + it.Cursor + "\ndata: ")); err != nil {
			return err
		}
		if err := enc.Encode(it.Event); err != nil { // ends with the newline of the data line
			return err
		}
		_, err := w.Write([]byte("\n"))
		return err
	}
	batch := func(caughtUp bool) error {
		if caughtUp && !ndjson {
			if _, err := w.Write([]byte(": caught up\n\n")); err != nil {
				return err
			}
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		return rc.SetWriteDeadline(time.Now().Add(h.feedWrite))
	}
	if err := f.Run(r.Context(), each, batch); err != nil {
		h.abort(r, err)
	}
}
