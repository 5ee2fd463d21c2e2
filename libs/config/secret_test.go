package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/config"
)

func TestSecret_NeverPrinted(t *testing.T) {
	t.Parallel()
	s := config.Secret("hunter2")
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "pw", s)
	j, _ := json.Marshal(struct{ P config.Secret }{s})
	for name, out := range map[string]string{
		//nolint:staticcheck // S1025: what is tested is that each verb, %s included, goes through the type's own formatting
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%#v": fmt.Sprintf("%#v", s),
		"struct %+v": fmt.Sprintf("%+v", struct{ P config.Secret }{s}),
		"slog":       logs.String(), "json": string(j),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s printed the secret: %q", name, out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestLine(t *testing.T) {
	t.Parallel()
	err := errors.Join(errors.New("a"), errors.New("b"))
	if got := config.Line(err); got != "a; b" {
		t.Errorf("Line = %q, want %q", got, "a; b")
	}
	if got := config.Line(nil); got != "" {
		t.Errorf("Line(nil) = %q", got)
	}
}
