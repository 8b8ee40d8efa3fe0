package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latch-auth/latch"
)

// TestInternal_BrokenConnectionIsUnavailable: a connection that breaks in
// the middle of a statement (the fault suite's dropped network path, a
// killed server) is EUNAVAILABLE, answered 503, like one that could not be
// made; a statement the server refused is not.
func TestInternal_BrokenConnectionIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), latch.EUNAVAILABLE},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), latch.EUNAVAILABLE},
		{fmt.Errorf("exec: %w", pgconn.ErrConnClosed), latch.EUNAVAILABLE},
		{context.DeadlineExceeded, latch.EUNAVAILABLE},
		{&pgconn.PgError{Code: "57P01"}, latch.EUNAVAILABLE}, // admin shutdown
		{&pgconn.PgError{Code: "23505"}, latch.EINTERNAL},    // unique violation: a bug, not an outage
		{errors.New("something else"), latch.EINTERNAL},
	} {
		if got := latch.ErrorCode(internal("op", tc.err)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}
