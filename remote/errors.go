package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrNotFound is returned when the runtime does not know the object asked for.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable is returned when the host or its runtime cannot be reached.
	ErrUnavailable = errors.New("host unavailable")
	// ErrDeadlineExceeded is returned, besides ErrUnavailable, when a call ran out of time:
	// for ExecSync, the command outran the request's timeout (the CRI's DeadlineExceeded).
	ErrDeadlineExceeded = errors.New("deadline exceeded")
	// ErrUnimplemented is returned when the host's runtime lacks a CRI method.
	ErrUnimplemented = errors.New("not implemented by the host runtime")
	// ErrInvalid is returned when the runtime rejects a request as malformed.
	ErrInvalid = errors.New("invalid request")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("connection closed")
)

// ExitError is a command on the host (or in a container) that ran and exited non-zero.
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return fmt.Sprintf("exit status %d: %s", e.Code, msg)
}

// translateStatus turns a gRPC status from the runtime into a native error that wraps one of
// the sentinels above where the code has a meaning callers act on.
func translateStatus(method string, err error) error {
	if err == nil || err == io.EOF {
		return err // io.EOF ends a stream and is compared by identity
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("cri %s: %w", method, err)
	}
	var kind error
	switch st.Code() {
	case codes.NotFound:
		kind = ErrNotFound
	case codes.DeadlineExceeded:
		return fmt.Errorf("cri %s: %s: %w: %w", method, st.Message(), ErrUnavailable, ErrDeadlineExceeded)
	case codes.Unavailable:
		kind = ErrUnavailable
	case codes.Unimplemented:
		kind = ErrUnimplemented
	case codes.InvalidArgument:
		kind = ErrInvalid
	case codes.Canceled:
		kind = context.Canceled
	default:
		return fmt.Errorf("cri %s: %s (%s)", method, st.Message(), st.Code())
	}
	return fmt.Errorf("cri %s: %s: %w", method, st.Message(), kind)
}
