package console

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"
)

// recorder is the http.ResponseWriter of a request served in process
// (localTransport): it keeps the status, headers and body, which result
// turns into the *http.Response a client expects.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush makes the recorder an http.Flusher, which streaming handlers
// expect; everything is kept until the handler returns anyway.
func (w *recorder) Flush() {}

// SetWriteDeadline makes the recorder's deadlines settable through an
// http.ResponseController, as streaming handlers set them; nothing is
// written to a connection, so there is nothing to time out.
func (w *recorder) SetWriteDeadline(time.Time) error { return nil }

func (w *recorder) result(req *http.Request) *http.Response {
	w.WriteHeader(http.StatusOK)
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()), Request: req,
	}
}
