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

// watchTimeout bounds each wait for a watch to report something.
const watchTimeout = 10 * time.Second

func openDir(t *testing.T, dir string, opts file.Options) *file.Dir {
	t.Helper()
	d, err := file.OpenDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dirStore(t *testing.T, d *file.Dir, name string) *file.Store {
	t.Helper()
	s, err := d.Store(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// watchUntilEnd watches s from after until the end of the test.
func watchUntilEnd(t *testing.T, s *file.Store, after string) <-chan store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// nextEvent returns the next event of a watch, failing the test if none
// comes within watchTimeout or the watch ends.
func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended, want an event")
		}
		return ev
	case <-time.After(watchTimeout):
		t.Fatalf("no watch event within %v", watchTimeout)
	}
	return store.Event{}
}

// untilVersion reads events until one reports version, failing the test on
// an error, a deletion or a version already passed.
func untilVersion(t *testing.T, ch <-chan store.Event, version string, written []string) {
	t.Helper()
	at := -1
	for {
		ev := nextEvent(t, ch)
		if ev.Err != nil || ev.Deleted {
			t.Fatalf("the watch reported %+v, want version %s", ev, version)
		}
		i := indexOf(written, ev.Record.Version)
		if i <= at {
			t.Fatalf("the watch reported version %s after %s: not in the order written", ev.Record.Version, written[at])
		}
		at = i
		if ev.Record.Version == version {
			return
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestOpenDirErrors(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, want string
	}{
		{"", "folder is required"},
		{filepath.Join(base, "missing", "leases"), "does not exist"},
		{notDir, "is not a folder"},
		{filepath.Join(notDir, "leases"), "not a directory"},
	} {
		_, err := file.OpenDir(c.dir, file.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenDir(%q): %v, want an error saying %q", c.dir, err, c.want)
		}
	}
	if _, err := file.OpenDir(base, file.Options{PollInterval: -time.Second}); err == nil {
		t.Errorf("a negative PollInterval was accepted")
	}

	dir := filepath.Join(base, "leases")
	d := openDir(t, dir, file.Options{})
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("OpenDir created %s as %v (%v), want a folder with mode 0700", dir, fi, err)
	}
	if d.Path() != dir {
		t.Errorf("Path %q, want %q", d.Path(), dir)
	}
	for _, name := range []string{"../escape", "a/b", "", "Upper"} {
		if _, err := d.Store(name); err == nil || !strings.Contains(err.Error(), "lease name") {
			t.Errorf("Store(%q): %v, want an error about the lease name", name, err)
		}
	}
	s := dirStore(t, d, "db")
	if want := filepath.Join(dir, "db.json"); s.Path() != want {
		t.Errorf("Path %q, want %q", s.Path(), want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("OpenDir and Store left %v in the folder (%v), want nothing", entries, err)
	}
}

// A Store of a Dir and one New returns share the lease of their name.
func TestDirStoresShareTheLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openDir(t, dir, file.Options{})
	own, err := file.New(dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	events := watchUntilEnd(t, dirStore(t, d, "db"), "")
	rec, err := own.Create(ctx, store.Record{Holder: "a", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Err != nil || ev.Record.Version != rec.Version {
		t.Fatalf("the Dir's Store reported %+v, want the record New's Store created, version %s", ev, rec.Version)
	}
	got, err := dirStore(t, d, "db").Get(ctx)
	if err != nil || got.Version != rec.Version {
		t.Fatalf("the Dir's Store read %+v (%v), want version %s", got, err, rec.Version)
	}
	if _, err := dirStore(t, d, "other").Get(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another lease of the Dir: %v, want store.ErrNotFound", err)
	}
}

// A Watch whose caller reads nothing holds up no other Watch of the Dir, of
// its own lease or another; once read, it reports the states in order and
// ends with the newest.
func TestDirSlowWatchHoldsUpNoOther(t *testing.T) {
	ctx := context.Background()
	d := openDir(t, t.TempDir(), file.Options{})
	a, b := dirStore(t, d, "a"), dirStore(t, d, "b")
	recA, err := a.Create(ctx, store.Record{Holder: "x", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	recB, err := b.Create(ctx, store.Record{Holder: "x", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	slow := watchUntilEnd(t, dirStore(t, d, "a"), recA.Version) // never read until the end
	sameLease := watchUntilEnd(t, dirStore(t, d, "a"), recA.Version)
	otherLease := watchUntilEnd(t, dirStore(t, d, "b"), recB.Version)

	writtenA, writtenB := []string{recA.Version}, []string{recB.Version}
	for i := 1; i <= 20; i++ {
		recA.Transitions = int64(i)
		if recA, err = a.Update(ctx, recA); err != nil {
			t.Fatal(err)
		}
		writtenA = append(writtenA, recA.Version)
		recB.Transitions = int64(i)
		if recB, err = b.Update(ctx, recB); err != nil {
			t.Fatal(err)
		}
		writtenB = append(writtenB, recB.Version)
		// Each write reaches the Watches that are read, with the slow one
		// still unread.
		untilVersion(t, sameLease, recA.Version, writtenA)
		untilVersion(t, otherLease, recB.Version, writtenB)
	}
	untilVersion(t, slow, recA.Version, writtenA)
}

// A Watch over a folder that goes away ends with an error, as every other
// Watch of the Dir does; a Watch started once the folder is back is
// notified again (by a notification watch of its own, since the broken one
// is gone), as the poll fallback would never do within the test.
func TestDirFolderRemoved(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "leases")
	d := openDir(t, dir, file.Options{PollInterval: time.Hour})
	a, b := dirStore(t, d, "a"), dirStore(t, d, "b")
	first, second := watchUntilEnd(t, a, ""), watchUntilEnd(t, b, "")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan store.Event{first, second} {
		if ev := nextEvent(t, ch); ev.Err == nil || !strings.Contains(ev.Err.Error(), "removed") {
			t.Fatalf("the watch reported %+v, want an error saying the folder was removed", ev)
		}
		select {
		case _, open := <-ch:
			if open {
				t.Fatal("the watch went on after its error")
			}
		case <-time.After(watchTimeout):
			t.Fatal("the watch was not closed after its error")
		}
	}

	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	again := watchUntilEnd(t, a, "")
	rec, err := a.Create(ctx, store.Record{Holder: "x", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, again); ev.Err != nil || ev.Record.Version != rec.Version {
		t.Fatalf("the watch in the folder made again reported %+v, want version %s", ev, rec.Version)
	}
}
