package latch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/latch-auth/latch"
)

// A backend wraps a driver error with WithCause: programs read the code,
// people the message, and the cause stays reachable.
func TestWithCause_CodeAndMessageFromTheErrorCauseInTheChain(t *testing.T) {
	cause := fmt.Errorf("driver: %w", context.Canceled)
	err := latch.WithCause(latch.Errorf(latch.EUNAVAILABLE, "sqlite: read: %v", cause), cause)
	if got := latch.ErrorCode(err); got != latch.EUNAVAILABLE {
		t.Errorf("ErrorCode = %q, want %q", got, latch.EUNAVAILABLE)
	}
	if got, want := err.Error(), "sqlite: read: driver: context canceled"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := latch.ErrorMessage(err); got != err.Error() {
		t.Errorf("ErrorMessage = %q, want the error's own message", got)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Error("the cause is not in the chain")
	}
	if errors.Is(err, latch.ErrNotFound) {
		t.Error("an EUNAVAILABLE error matches ErrNotFound")
	}
}
