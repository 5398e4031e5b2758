//go:build unix

package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

// Revisions rise across the deletion of the record file, because the lock
// file keeps the sequence, and across the loss of the lock file, because the
// record keeps its own; only losing both starts them over.
func TestRevisionOutlivesEitherFile(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "db.lock")
	ctx := context.Background()
	rec := store.Record{Holder: "a", LeaseDuration: time.Second}
	create := func(what string, want int64) store.Record {
		t.Helper()
		got, err := s.Create(ctx, rec)
		if err != nil {
			t.Fatalf("%s: Create: %v", what, err)
		}
		if got.Revision != want {
			t.Fatalf("%s: Create returned revision %d, want %d", what, got.Revision, want)
		}
		return got
	}
	update := func(what string, cur store.Record, want int64) store.Record {
		t.Helper()
		got, err := s.Update(ctx, cur)
		if err != nil {
			t.Fatalf("%s: Update: %v", what, err)
		}
		if got.Revision != want {
			t.Fatalf("%s: Update returned revision %d, want %d", what, got.Revision, want)
		}
		if read, err := s.Get(ctx); err != nil || read.Revision != want {
			t.Fatalf("%s: Get returned revision %d (%v), want %d", what, read.Revision, err, want)
		}
		return got
	}
	remove := func(path string) {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}

	cur := create("new lease", 1)
	update("new lease", cur, 2)
	remove(s.Path())
	cur = create("record deleted", 3)
	remove(lock)
	cur = update("lock file removed", cur, 4)
	// A writer that raised the sequence and died before writing the
	// record: the revision it took is skipped, never reused.
	if err := os.WriteFile(lock, []byte("10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	update("sequence ahead of the record", cur, 11)
	if seq, err := os.ReadFile(lock); err != nil || string(seq) != "11\n" {
		t.Errorf("the lock file holds %q (%v), want %q", seq, err, "11\n")
	}
	// The documented limit: with both files gone, nothing is left to
	// count from.
	remove(s.Path())
	remove(lock)
	create("both files removed", 1)
}

// A lock file whose sequence cannot be read is reported, naming the file,
// and writes stop until it is fixed; reads go on.
func TestMalformedLockFile(t *testing.T) {
	for _, content := range []string{"x", "-3", "+3", "1 2", "3x", "0x10", strings.Repeat("9", 25), "9223372036854775808"} {
		t.Run(content, func(t *testing.T) {
			dir := t.TempDir()
			s, err := file.New(dir, "db")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rec, err := s.Create(ctx, store.Record{Holder: "a", LeaseDuration: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(dir, "db.lock")
			if err := os.WriteFile(lock, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = s.Update(ctx, rec)
			if !errors.Is(err, store.ErrMalformed) || !strings.Contains(err.Error(), lock) || !strings.Contains(err.Error(), "fix or remove the file") {
				t.Errorf("Update: %v, want an error wrapping store.ErrMalformed that names %s and tells the operator what to do", err, lock)
			}
			t.Logf("Update: %v", err)
			if got, err := s.Get(ctx); err != nil || got.Version != rec.Version {
				t.Errorf("Get: version %q (%v), want the record as it was, %q", got.Version, err, rec.Version)
			}
			if err := os.Remove(s.Path()); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Create(ctx, rec); !errors.Is(err, store.ErrMalformed) {
				t.Errorf("Create: %v, want an error wrapping store.ErrMalformed", err)
			}
			if data, err := os.ReadFile(lock); err != nil || string(data) != content {
				t.Errorf("the lock file was changed to %q (%v)", data, err)
			}
		})
	}
}

// A sequence written by hand with leading zeros or blanks is read as the
// number it spells, and replaced whole.
func TestLockFileSequenceWrittenByHand(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "db.lock")
	if err := os.WriteFile(lock, []byte(" 007 \n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Create(context.Background(), store.Record{Holder: "a", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revision != 8 {
		t.Errorf("Create returned revision %d, want 8", rec.Revision)
	}
	if seq, err := os.ReadFile(lock); err != nil || string(seq) != "8\n" {
		t.Errorf("the lock file holds %q (%v), want %q", seq, err, "8\n")
	}
}
