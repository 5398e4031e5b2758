package file

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/incumbent-io/incumbent/store"
)

// The lock file holds the lease's revision sequence: the largest revision
// any write has taken, as a decimal number and a newline. It is read and
// written only by the holder of its flock, in place (replacing the file
// would break the lock).

// maxSequenceLen is the length of the longest sequence: 19 digits and a
// newline.
const maxSequenceLen = 20

// nextRevision raises the sequence in the locked lock file above both its
// current value and after (the revision of the record about to be replaced,
// zero when there is none), syncs it, and returns the new value. It is
// called before the record is written: a crash in between only skips a
// revision, where the other order could hand out the same revision twice
// (the record's, then after a deletion the sequence's next).
func nextRevision(lock *os.File, after int64) (int64, error) {
	seq, err := readSequence(lock)
	if err != nil {
		return 0, err
	}
	rev := max(seq, after)
	if rev == math.MaxInt64 {
		return 0, fmt.Errorf("%w: revision %d (lock file %s) cannot grow", store.ErrMalformed, rev, lock.Name())
	}
	rev++
	if err := writeSequence(lock, rev); err != nil {
		return 0, err
	}
	return rev, nil
}

// readSequence reads the sequence in the lock file: zero when the file is
// empty (a new lease, or one from before revisions), an error wrapping
// store.ErrMalformed when it holds anything but a decimal number.
func readSequence(lock *os.File) (int64, error) {
	buf := make([]byte, maxSequenceLen+1)
	n, err := lock.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read lock file %s: %w", lock.Name(), classify(err))
	}
	text := strings.TrimSpace(string(buf[:n]))
	if text == "" {
		return 0, nil
	}
	seq, err := strconv.ParseInt(text, 10, 64)
	if n > maxSequenceLen || err != nil || strings.TrimLeft(text, "0123456789") != "" {
		return 0, fmt.Errorf("%w: lock file %s holds %q, not a revision sequence (a decimal number); fix or remove the file by hand (revisions then continue from the record's; with no record, they start over)",
			store.ErrMalformed, lock.Name(), buf[:min(n, maxSequenceLen)])
	}
	return seq, nil
}

// writeSequence replaces the sequence in the lock file with seq and syncs
// it.
func writeSequence(lock *os.File, seq int64) error {
	b := strconv.AppendInt(nil, seq, 10)
	b = append(b, '\n')
	if _, err := lock.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write lock file %s: %w", lock.Name(), classify(err))
	}
	// Cut what may follow: a hand-written "007" is longer than the "8"
	// written over it.
	if err := lock.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("write lock file %s: %w", lock.Name(), classify(err))
	}
	if err := lock.Sync(); err != nil {
		return fmt.Errorf("sync lock file %s: %w", lock.Name(), err)
	}
	return nil
}
