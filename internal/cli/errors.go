package cli

import (
	"errors"
	"fmt"

	"github.com/incumbent-io/incumbent/internal/rbac"
)

// exitError carries the exit code of a failed command. A nil err only sets
// the code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usage marks err as a problem with the invocation: exit code 2.
func usage(err error) error { return &exitError{code: ExitUsage, err: err} }

func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// failure marks err as a run-time failure: exit code 1. An error that
// already carries an exit code (a usage error, a refused permission), even
// wrapped, keeps it.
func failure(err error) error {
	if err == nil {
		return nil
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.err != nil && ex.err.Error() != err.Error() {
			return &exitError{code: ex.code, err: err}
		}
		return ex
	}
	return &exitError{code: ExitFailure, err: err}
}

func failuref(format string, args ...any) error { return failure(fmt.Errorf(format, args...)) }

// permissionDenied marks err as a refused permission: exit code 3.
func permissionDenied(err error) error { return &exitError{code: ExitPermission, err: err} }

// isMissingPermission reports whether err says the RBAC check found a
// permission missing.
func isMissingPermission(err error) bool { return errors.Is(err, rbac.ErrMissing) }
