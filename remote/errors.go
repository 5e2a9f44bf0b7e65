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

// RuntimeError is an answer of the runtime that is an error: the CRI method, the gRPC code's
// name and the runtime's own message. It wraps the sentinel above that goes with the code, if
// any. It is no gRPC status itself, so callers need not know gRPC to read it.
type RuntimeError struct {
	Method  string
	Code    string // gRPC's name of the code: NotFound, Unknown...
	Message string
	kinds   []error
}

func (e *RuntimeError) Error() string {
	if len(e.kinds) == 0 {
		return fmt.Sprintf("cri %s: %s (%s)", e.Method, e.Message, e.Code)
	}
	s := fmt.Sprintf("cri %s: %s", e.Method, e.Message)
	for _, k := range e.kinds {
		s += ": " + k.Error()
	}
	return s
}

func (e *RuntimeError) Unwrap() []error { return e.kinds }

// translateStatus turns a gRPC status from the runtime into a *RuntimeError that wraps one of
// the sentinels above where the code has a meaning callers act on.
func translateStatus(method string, err error) error {
	if err == nil || err == io.EOF {
		return err // io.EOF ends a stream and is compared by identity
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("cri %s: %w", method, err)
	}
	e := &RuntimeError{Method: method, Code: st.Code().String(), Message: st.Message()}
	switch st.Code() {
	case codes.NotFound:
		e.kinds = []error{ErrNotFound}
	case codes.DeadlineExceeded:
		e.kinds = []error{ErrUnavailable, ErrDeadlineExceeded}
	case codes.Unavailable:
		e.kinds = []error{ErrUnavailable}
	case codes.Unimplemented:
		e.kinds = []error{ErrUnimplemented}
	case codes.InvalidArgument:
		e.kinds = []error{ErrInvalid}
	case codes.Canceled:
		e.kinds = []error{context.Canceled}
	}
	return e
}
