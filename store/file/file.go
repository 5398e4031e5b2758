package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// DefaultPollInterval is how often a watch reads the record when it cannot
// be notified of changes.
const DefaultPollInterval = 200 * time.Millisecond

// Options tune a Store. The zero value means the defaults.
type Options struct {
	// Poll makes Watch read the record every PollInterval instead of asking
	// the operating system for notifications.
	Poll bool
	// PollInterval is how often a polling watch reads the record. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
}

// Store is the file-backed store.Store of one lease. It is safe for
// concurrent use, and any number of Stores, in any number of processes of
// one machine, may share one lease.
type Store struct {
	d        *Dir // the folder, whose notification watch the Store's Watches share
	dir      string
	name     string
	path     string // the record
	lockPath string
	tmpPath  string
	opts     Options
}

// New returns the Store of the lease name in the folder dir, with default
// Options. See NewWithOptions.
func New(dir, name string) (*Store, error) { return NewWithOptions(dir, name, Options{}) }

// NewWithOptions returns the Store of the lease name in the folder dir. It
// creates dir (mode 0700) when it is missing and its parent exists, and
// fails with a clear error when dir cannot be created, is not a folder, or is
// not writable by this process (that error wraps store.ErrPermission), or
// when name is not a valid lease name (see ValidateName). It does not read or
// create the record.
//
// The Store's folder is a Dir of its own: its Watches share one
// notification watch of the folder, but no other Store's. A process that
// keeps many leases in one folder makes their Stores with one Dir (OpenDir)
// instead, so that they all share one.
func NewWithOptions(dir, name string, opts Options) (*Store, error) {
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	d, err := OpenDir(dir, opts)
	if err != nil {
		return nil, err
	}
	return d.Store(name)
}

// String names the record file, e.g. "file /home/u/.local/state/incumbent/db.json".
func (s *Store) String() string { return "file " + s.path }

// Path is the record file.
func (s *Store) Path() string { return s.path }

// Get implements store.Store. It takes no lock: the record file is only ever
// replaced whole. A malformed record is reported as an error wrapping
// store.ErrMalformed that names the file.
func (s *Store) Get(ctx context.Context) (store.Record, error) {
	if err := ctx.Err(); err != nil {
		return store.Record{}, fmt.Errorf("get %s: %w", s, err)
	}
	rec, _, err := s.read()
	if err != nil {
		return store.Record{}, fmt.Errorf("get %s: %w", s, err)
	}
	return rec, nil
}

// Create implements store.Store. It refuses to replace a malformed record.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	var out store.Record
	err := s.locked(ctx, func(lock *os.File) error {
		_, _, err := s.read()
		switch {
		case err == nil:
			return store.ErrConflict
		case errors.Is(err, store.ErrMalformed):
			return refuse(err)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		inc, err := newIncarnation()
		if err != nil {
			return err
		}
		out, err = s.write(lock, rec, version{gen: 1, incarnation: inc}, 0)
		return err
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("create %s: %w", s, err)
	}
	return out, nil
}

// Update implements store.Store. It refuses to replace a malformed record.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	var out store.Record
	err := s.locked(ctx, func(lock *os.File) error {
		cur, v, err := s.read()
		switch {
		case errors.Is(err, store.ErrMalformed):
			return refuse(err)
		case err != nil:
			return err
		case cur.Version != rec.Version:
			return fmt.Errorf("%w: version is %s, not %s", store.ErrConflict, cur.Version, rec.Version)
		}
		out, err = s.write(lock, rec, version{gen: v.gen + 1, incarnation: v.incarnation}, cur.Revision)
		return err
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("update %s: %w", s, err)
	}
	return out, nil
}

func refuse(err error) error {
	return fmt.Errorf("%w; refusing to overwrite it: fix or remove the file by hand", err)
}

// locked runs fn while holding the lease's lock, unless ctx ends first; fn
// gets the lock file, which keeps the revision sequence. Once fn starts it
// runs to the end: a write is never left half done.
func (s *Store) locked(ctx context.Context, fn func(lock *os.File) error) error {
	lock, unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(lock)
}

// read reads and decodes the record file. Errors wrap store.ErrNotFound,
// store.ErrMalformed or store.ErrPermission where they apply; callers add
// the operation and the file (String).
func (s *Store) read() (store.Record, version, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return store.Record{}, version{}, store.ErrNotFound
	}
	if err != nil {
		return store.Record{}, version{}, classify(err)
	}
	return decode(data)
}

// write replaces the record file with rec at version v and the next
// revision (see nextRevision; after is the revision of the record replaced,
// zero for none), so that a crash at any point leaves either the old or the
// new record: it writes a temporary file, syncs it, renames it over the
// record and syncs the folder. The caller holds the lock.
func (s *Store) write(lock *os.File, rec store.Record, v version, after int64) (store.Record, error) {
	rev, err := nextRevision(lock, after)
	if err != nil {
		return store.Record{}, err
	}
	rec.Revision = rev
	data, err := encode(rec, v)
	if err != nil {
		return store.Record{}, err
	}
	if err := writeSynced(s.tmpPath, data); err != nil {
		os.Remove(s.tmpPath)
		return store.Record{}, err
	}
	if err := os.Rename(s.tmpPath, s.path); err != nil {
		os.Remove(s.tmpPath)
		return store.Record{}, classify(err)
	}
	if err := syncDir(s.dir); err != nil {
		// The new record is in place, but may not survive a power loss.
		return store.Record{}, err
	}
	rec.Version = v.String()
	return rec, nil
}

// writeSynced writes data to path (created or truncated, mode 0600) and
// flushes it to stable storage.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return classify(err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return classify(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes the folder's entries (the rename) to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return classify(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// classify wraps a permission error with store.ErrPermission, so that the
// elector stops instead of retrying what cannot succeed.
func classify(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", store.ErrPermission, err)
	}
	return err
}

var _ store.Store = (*Store)(nil)
