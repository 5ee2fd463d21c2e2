package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// importReport is an import's progress (GET /t/{tenant}/imports/{id}).
type importReport struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Total    int64  `json:"total"`
	Imported int64  `json:"imported"`
	Failed   int64  `json:"failed"`
	Errors   []struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// usersImport sends FILE (JSON lines, one user a line) to POST
// /t/{tenant}/users:import with the invocation's idempotency key, shows
// the upload and then the import's progress, and lists the lines that
// were not imported. It fails when any line failed, so that scripts
// notice; the same command with the same --idempotency-key runs the
// import again without writing anything twice.
func usersImport(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "FILE"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	tok, err := in.token(ctx, tenant)
	if err != nil {
		return err
	}
	var body io.Reader = f
	var upload *progressbar.ProgressBar
	if !in.opts.json {
		upload = in.bar(info.Size(), "uploading "+args[0], "bytes")
		body = io.TeeReader(f, upload)
	}
	var rep importReport
	_, err = in.do(ctx, call{
		service: "command", base: in.opts.commandURL, method: http.MethodPost, path: pathf("/t/%s/users:import", tenant),
		body: body, contentType: "application/x-ndjson", token: tok, out: &rep,
		header: http.Header{headerIdempotencyKey: {in.opts.idempotencyKey}},
	})
	if upload != nil {
		_ = upload.Finish()
		fmt.Fprintln(in.env.Err)
	}
	if err != nil {
		return fmt.Errorf("%w (the same command with --idempotency-key %s writes nothing twice)", err, in.opts.idempotencyKey)
	}

	var bar *progressbar.ProgressBar
	if !in.opts.json {
		fmt.Fprintf(in.env.Err, "importing into tenant %s (import %s)\n", tenant, rep.ID)
		bar = in.bar(-1, "users", "users")
	}
	tick := time.NewTicker(jobPoll)
	defer tick.Stop()
	for {
		if tok, err = in.token(ctx, tenant); err != nil {
			return err
		}
		var apiErr *APIError
		_, err := in.do(ctx, call{
			service: "command", base: in.opts.commandURL, method: http.MethodGet,
			path: pathf("/t/%s/imports/%s", tenant, rep.ID), token: tok, out: &rep,
		})
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable:
			// The service is busy (with the import): ask again.
		case err != nil:
			return err
		}
		if bar != nil {
			if rep.Total > 0 && bar.GetMax64() != rep.Total {
				bar.ChangeMax64(rep.Total)
			}
			bar.Describe(fmt.Sprintf("%d imported, %d failed", rep.Imported, rep.Failed))
			_ = bar.Set64(rep.Imported + rep.Failed)
		}
		if rep.Status == "done" {
			break
		}
		select {
		case <-ctx.Done():
			if bar != nil {
				_ = bar.Exit()
			}
			return fmt.Errorf("stopped watching; the import goes on in the command service (import %s)", rep.ID)
		case <-tick.C:
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(in.env.Err)
	}
	if in.opts.json {
		if err := printJSON(in.env.Out, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(in.env.Out, "import %s: %d of %d lines imported, %d failed\n", rep.ID, rep.Imported, rep.Total, rep.Failed)
		for _, e := range rep.Errors {
			fmt.Fprintf(in.env.Out, "line %d: %s\n", e.Line, e.Reason)
		}
		if int64(len(rep.Errors)) < rep.Failed {
			fmt.Fprintf(in.env.Out, "(%d more failed lines not listed)\n", rep.Failed-int64(len(rep.Errors)))
		}
	}
	if rep.Failed > 0 {
		return errors.New("some lines were not imported")
	}
	return nil
}

// bar is a progress bar on the error output: a spinner while max is -1.
func (in *inv) bar(maxValue int64, what, unit string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(maxValue,
		progressbar.OptionSetWriter(in.env.Err),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}
