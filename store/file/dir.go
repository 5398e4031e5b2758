package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Dir is a lease folder, for a process that keeps many leases in one folder
// (one election per shard or per tenant, say). Its Stores are Stores like
// those NewWithOptions returns, with every semantic of the package; only
// their Watches differ in cost: they share one notification watch of the
// folder (one inotify instance on Linux, where a user may hold only
// fs.inotify.max_user_instances of them, 128 by default, shared by all the
// user's processes), fanned out to each Watch by the name of its record
// file. That watch is set up when a Watch of one of the Dir's Stores needs
// it and closed when the last such Watch ends; a Watch never waits for
// another, however slowly its caller reads. (With Options.Poll, or when no
// notification watch can be set up, each Watch reads its record every
// Options.PollInterval, as without a Dir.)
//
// A Dir is safe for concurrent use and holds nothing that must be closed.
// Any number of Dirs, in any number of processes, may open one folder.
type Dir struct {
	path string // absolute
	opts Options

	mu sync.Mutex
	n  *notifier // the shared notification watch; nil while no Watch uses one
}

// OpenDir returns the lease folder dir, whose Stores all have the Options
// opts. It creates dir (mode 0700) when it is missing and its parent
// exists, and fails with a clear error when dir cannot be created, is not
// a folder, or is not writable by this process (that error wraps
// store.ErrPermission), or when opts are invalid. It reads no record and
// starts no watch.
func OpenDir(dir string, opts Options) (*Dir, error) {
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	if opts.PollInterval < 0 {
		return nil, fmt.Errorf("file store: PollInterval must not be negative, got %v", opts.PollInterval)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if dir == "" {
		return nil, errors.New("file store: a folder is required (file.DefaultDir gives the per-user default)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store: folder %q: %w", dir, err)
	}
	if err := ensureDir(abs); err != nil {
		return nil, err
	}
	return &Dir{path: abs, opts: opts}, nil
}

// Store returns the Store of the lease name in the folder, or an error
// when name is not a valid lease name (see ValidateName). Stores of one
// name, from this Dir or any other, in this process or any other, share
// one record. It does not read or create the record.
func (d *Dir) Store(name string) (*Store, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return &Store{
		d:        d,
		dir:      d.path,
		name:     name,
		path:     filepath.Join(d.path, name+".json"),
		lockPath: filepath.Join(d.path, name+".lock"),
		tmpPath:  filepath.Join(d.path, name+".json.tmp"),
		opts:     d.opts,
	}, nil
}

// Path is the folder, as an absolute path.
func (d *Dir) Path() string { return d.path }

// DefaultDir returns the per-user folder for leases:
// $XDG_STATE_HOME/incumbent when XDG_STATE_HOME is set to an absolute path,
// else ~/.local/state/incumbent, else (no home folder) incumbent in
// os.UserCacheDir. It creates the folders above it (mode 0700) when they are
// missing, so that New can create the folder itself; it does not create the
// folder.
func DefaultDir() (string, error) {
	dir, err := defaultDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("file store: create the parent of the default folder %s: %w", dir, classify(err))
	}
	return dir, nil
}

func defaultDir() (string, error) {
	// The XDG base directory specification says to ignore relative paths.
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "incumbent"), nil
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "incumbent"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("file store: no default folder (set XDG_STATE_HOME or HOME, or name a folder): %w", err)
	}
	return filepath.Join(cache, "incumbent"), nil
}

// ensureDir makes sure dir is a folder this process may write in, creating it
// (mode 0700, not its parents) if it is missing and its parent exists.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(dir)
		if _, perr := os.Stat(parent); perr != nil {
			return fmt.Errorf("file store: folder %s does not exist and cannot be created: its parent: %w", dir, classify(perr))
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("file store: create folder %s: %w", dir, classify(err))
		}
		fi, err = os.Stat(dir)
		if err != nil {
			return fmt.Errorf("file store: folder %s: %w", dir, classify(err))
		}
	case err != nil:
		return fmt.Errorf("file store: folder %s: %w", dir, classify(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("file store: %s is not a folder", dir)
	}
	if err := checkWritable(dir); err != nil {
		return fmt.Errorf("file store: folder %s is not writable by this process: %w", dir, classify(err))
	}
	return nil
}
