package readmodel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
)

func TestPrepare_createsAndMigrates(t *testing.T) {
	url := pgtest.EmptyURL(t)
	pool, err := readmodel.Prepare(context.Background(), url, "prepare-test")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	v, err := readmodel.CurrentVersion(context.Background(), pool)
	if err != nil || v != readmodel.LatestVersion() {
		t.Fatalf("version = %d, %v; want %d", v, err, readmodel.LatestVersion())
	}
}

func TestPrepare_namesTheVariable(t *testing.T) {
	_, err := readmodel.Prepare(context.Background(), "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=1", "x")
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v, want a DATABASE_URL error without the password", err)
	}
}

func TestCheckURL(t *testing.T) {
	if p := readmodel.CheckURL("postgres://postgres@127.0.0.1:5432/authstream"); p != "" {
		t.Errorf("valid URL: %q", p)
	}
	if p := readmodel.CheckURL("mysql://x"); p == "" {
		t.Error("invalid URL accepted")
	}
}
