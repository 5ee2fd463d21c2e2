package readmodel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
)

func TestParseNotification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    readmodel.Notification
		ok      bool
	}{
		{"accounts:3:42", readmodel.Notification{Projection: "accounts", Partition: 3, Seq: 42}, true},
		{"accounts:15:0", readmodel.Notification{Projection: "accounts", Partition: 15}, true},
		{"accounts:3", readmodel.Notification{}, false},
		{":3:4", readmodel.Notification{}, false},
		{"accounts:-1:4", readmodel.Notification{}, false},
		{"accounts:x:4", readmodel.Notification{}, false},
		{"accounts:1:-4", readmodel.Notification{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			got, err := readmodel.ParseNotification(tt.payload)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseNotification(%q) = %+v, %v", tt.payload, got, err)
			}
			if tt.ok && got.String() != tt.payload {
				t.Fatalf("String() = %q, want %q", got.String(), tt.payload)
			}
		})
	}
}

func TestPosition(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET seq = 7 WHERE projection = 'accounts@1' AND partition = 5`); err != nil {
		t.Fatal(err)
	}
	got, err := readmodel.Position(ctx, pool, readmodel.ProjectionAccounts, 5)
	if err != nil || got != 7 {
		t.Fatalf("Position = %d, %v; want 7", got, err)
	}
	if _, err := readmodel.Position(ctx, pool, "nope", 5); !errors.Is(err, readmodel.ErrNoPosition) {
		t.Fatalf("unknown projection: %v", err)
	}
}
