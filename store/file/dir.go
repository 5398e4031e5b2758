package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

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
