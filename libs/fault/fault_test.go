package fault_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
)

func TestRetryAfterOf(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("outer: %w", fault.WithRetryAfter(fault.Errorf(fault.TooMany, "x"), time.Second))
	if d, ok := fault.RetryAfterOf(err); !ok || d != time.Second {
		t.Errorf("RetryAfterOf = %v, %v", d, ok)
	}
	if fault.CodeOf(err) != fault.TooMany || fault.MessageOf(err) != "x" {
		t.Errorf("WithRetryAfter changed the fault: %v %q", fault.CodeOf(err), fault.MessageOf(err))
	}
	if _, ok := fault.RetryAfterOf(errors.New("x")); ok {
		t.Error("plain error has a retry delay")
	}
	if fault.WithRetryAfter(nil, time.Second) != nil {
		t.Error("WithRetryAfter(nil) != nil")
	}
}
