// Package store defines the lease record that an election is decided on and
// the small interface a backend implements to keep it: get, create,
// compare-and-set update, and watch.
//
// A Store holds exactly one record: the record of one election. Every write
// is conditional. Create fails when a record exists; Update fails unless the
// record still carries the version the caller read. Every state a store
// returns carries a Revision that orders it among all writes ever made to
// the record, across deletion and re-creation: the election's fencing tokens
// are made of it. The election algorithm (package election) relies on
// nothing else: it never trusts the timestamps written in a record and never
// needs a watch for safety, only for speed.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned (wrapped) when the election's record does not exist.
var ErrNotFound = errors.New("lease record not found")

// ErrConflict is returned (wrapped) when a conditional write lost: Create
// found a record already there, or Update found a newer version than the one
// it was given. The caller must read the record again before deciding.
var ErrConflict = errors.New("lease record changed concurrently")

// ErrMalformed is returned (wrapped) when a stored record cannot be
// understood, for example a hand-edited field with an impossible value. A
// store never overwrites such a record silently.
var ErrMalformed = errors.New("malformed lease record")

// ErrPermission is returned (wrapped) when the backend refuses an operation
// for lack of rights. The wrapping error names the operation and the resource.
// It does not go away by retrying.
var ErrPermission = errors.New("permission denied")

// ErrCredentials is the refusal of the caller's credentials themselves, not
// of one permission: on Kubernetes a 401 Unauthorized (an invalid or
// expired token, or a pod's bound token once its pod object is deleted).
// It wraps ErrPermission, so errors.Is(err, ErrPermission) holds for it too.
var ErrCredentials = fmt.Errorf("%w (credentials rejected)", ErrPermission)

// Record is the state of one election. On Kubernetes it is exactly the spec
// of a coordination.k8s.io/v1 Lease as client-go's LeaseLock writes it, plus
// a few annotations under incumbent.io/.
type Record struct {
	// Holder is the identity of the candidate holding the lease; empty when
	// the lease is free (released or never taken).
	Holder string
	// Instance is the random marker of the process that holds the lease, so
	// that two processes started with the same identity can tell each other
	// apart. Empty when the holder is not an incumbent process.
	Instance string
	// LeaseDuration is how long followers must wait, counted on their own
	// clock from when they observed this version, before they may consider
	// the lease abandoned.
	LeaseDuration time.Duration
	// AcquireTime and RenewTime are the holder's wall-clock stamps. They are
	// informative only: the algorithm never compares them with a local clock.
	AcquireTime time.Time
	RenewTime   time.Time
	// Transitions counts changes of holder, as client-go counts them in a
	// Lease's leaseTransitions. It is informative: fencing tokens are made
	// of revisions (see Revision and Term), which, unlike this counter, keep
	// rising when the record is deleted and created again.
	Transitions int64
	// Term is the fencing token of the holder's term as the holder recorded
	// it: the Revision of the write with which it acquired the lease. A
	// holder records it with its first renewal, so it is zero until then,
	// and zero for a holder that is not an incumbent candidate (client-go).
	Term int64
	// HandoffTo, on a released record, reserves the lease for one identity:
	// other incumbent candidates hold back for LeaseDuration.
	HandoffTo string
	// TransferTo, on a held record, asks the holder to step down and hand the
	// lease to that identity. It is written by operators (incumbent transfer).
	TransferTo string
	// ReleaseRequested, on a held record, asks the holder to step down and
	// release the lease. It is written by operators (incumbent release).
	ReleaseRequested bool
	// Version identifies this exact state of the record for compare-and-set:
	// a Kubernetes resourceVersion, an etcd mod revision, a file generation.
	// It is opaque; only equality is meaningful.
	Version string
	// Revision orders the states of the record: every write gets a larger
	// Revision than every write made before it, including writes made
	// before the record was deleted and created again. A Kubernetes
	// resourceVersion (comparable since Kubernetes 1.35, KEP-5504), an etcd
	// mod revision, a sequence the file store keeps beside the record, a
	// counter in memory. Stores set it, always positive, on every record
	// they return; it is zero only on a record built by hand.
	Revision int64
}

// Held reports whether the record names a holder.
func (r Record) Held() bool { return r.Holder != "" }

// Validate reports what is impossible in a record read from a store, such as
// a hand-edited negative duration. It is nil for every record the election
// writes.
func (r Record) Validate() error {
	switch {
	case r.Holder != "" && r.LeaseDuration <= 0:
		return fmt.Errorf("%w: holder %q with non-positive lease duration %v", ErrMalformed, r.Holder, r.LeaseDuration)
	case r.LeaseDuration < 0:
		return fmt.Errorf("%w: negative lease duration %v", ErrMalformed, r.LeaseDuration)
	case r.Transitions < 0:
		return fmt.Errorf("%w: negative transitions %d", ErrMalformed, r.Transitions)
	case r.Term < 0:
		return fmt.Errorf("%w: negative term %d", ErrMalformed, r.Term)
	}
	return nil
}

// Event is one change seen by a watch.
type Event struct {
	// Record is the new state. When Deleted is set it is the zero Record
	// but for Revision: the revision of the deletion, where the backend
	// reports it (zero otherwise).
	Record Record
	// Deleted reports that the record was removed.
	Deleted bool
	// Err, when set, says why the watch is about to end; the channel is
	// closed right after it. Record and Deleted are then meaningless.
	Err error
}

// Store keeps the record of one election. Implementations must be safe for
// concurrent use.
type Store interface {
	// Get returns the current record, or an error wrapping ErrNotFound.
	Get(ctx context.Context) (Record, error)
	// Create writes rec only if no record exists, and returns it with its
	// new Version; otherwise it returns an error wrapping ErrConflict.
	// rec.Version is ignored.
	Create(ctx context.Context, rec Record) (Record, error)
	// Update replaces the record only if its current Version equals
	// rec.Version, and returns it with its new Version. Otherwise it returns
	// an error wrapping ErrConflict (or ErrNotFound if it is gone). Data the
	// store keeps beside the record (labels, other annotations) is preserved.
	Update(ctx context.Context, rec Record) (Record, error)
	// Watch reports changes made after the version `after` (or after now when
	// it is empty) on the returned channel, in order. The channel is closed
	// when ctx ends or the watch breaks; the caller then reads the record and
	// watches again. A watch may merge successive changes into the newest
	// state (the file store does), but never hides a deletion; it may stall
	// or break at any time: callers must not depend on it for safety.
	Watch(ctx context.Context, after string) (<-chan Event, error)
	// String names the record for logs and errors, e.g. "lease default/db".
	String() string
}

// Follower is implemented by stores whose watch is shared by the many
// elections of a process and keeps their records in memory (kube.Client's
// shared watch). It costs an election no request to start following, and
// no goroutine of its own while it follows.
type Follower interface {
	// Follow calls fn with the record's state as the store knows it (a
	// deletion when it knows none), then with each change after it, in
	// order, until ctx ends or the store stops following the record for
	// it; then it calls ended, once and after the last fn, with the reason
	// (nil when ctx ended). The state may lag behind the store's own by as
	// much as its watch does, and successive changes may be merged into the
	// newest, never a deletion. fn and ended are called from the store's
	// goroutines, or from Follow's own before it returns: they must return
	// at once and must not call the store. When the store cannot follow any
	// more (its watch cannot be kept up: the server is unreachable, the
	// credentials are rejected), ended gets the reason: the caller then
	// reads the record, which reports it, and polls until it can follow
	// again.
	// ok is false when the store cannot follow this record now (its watch
	// is not shared): the caller reads the record and calls Watch instead.
	Follow(ctx context.Context, fn func(Event), ended func(error)) (ok bool, err error)
}
