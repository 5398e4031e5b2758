//go:build linux

package file_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

// manyElections is how many elections TestManyElectionsInOneFolder runs in
// one process, each with two candidates: well above the 128 inotify
// instances Linux allows each user by default (fs.inotify.max_user_instances).
const manyElections = 300

// The timings of those elections: a lease long enough that a loaded machine
// costs no term, and far longer than takeOverWithin, so that only a watch
// can hand a lease over in time (a follower that sees nothing takes over
// only once the lease has expired by its clock).
const (
	manyLease         = 2 * time.Minute
	manyRenewDeadline = time.Minute
	manyRetry         = 2 * time.Second
	manyRenewInterval = 20 * time.Second
	manyGrace         = time.Second
	// manyWait bounds the wait for all the elections to settle.
	manyWait = 3 * time.Minute
	// takeOverWithin bounds the wait for every follower to take over after
	// its leader resigned.
	takeOverWithin = 30 * time.Second
)

// openLeases returns how TestManyElectionsInOneFolder makes the Stores of
// its leases in the folder dir: Stores of one Dir.
func openLeases(t *testing.T, dir string, opts file.Options) func(t *testing.T, name string) *file.Store {
	d, err := file.OpenDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, name string) *file.Store {
		s, err := d.Store(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// One process runs 300 elections in one folder, two candidates each, so 600
// watches: they must hold one inotify instance between them, leave the
// user's other instances to everybody else, and every graceful hand-over
// must be taken through the watch (without reading the record).
//
// Watches poll only every hour if they fall back to polling, as a file
// store's Watch does when it cannot get an inotify instance: one that did
// would report nothing during the test, and its follower would take over
// only at the lease's expiry, two minutes after the resignation.
func TestManyElectionsInOneFolder(t *testing.T) {
	baseline := inotifyInstances(t)
	newStore := openLeases(t, t.TempDir(), file.Options{PollInterval: time.Hour})

	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		stopped := make(chan struct{})
		go func() { running.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(time.Minute):
			t.Errorf("the candidates did not stop within a minute of their context ending")
		}
	})
	log := slog.New(slog.NewTextHandler(&testLog{t: t}, &slog.HandlerOptions{Level: slog.LevelError}))

	elections := make([]*manyElection, manyElections)
	for i := range elections {
		elections[i] = &manyElection{name: fmt.Sprintf("election-%03d", i), checker: electiontest.NewChecker()}
	}
	start := func(e *manyElection, id string) *manyCandidate {
		c := &manyCandidate{id: id, store: &countingStore{Store: newStore(t, e.name), watched: poke}}
		el, err := election.New(election.Config{
			Store: c.store, Identity: id,
			LeaseDuration: manyLease, RenewDeadline: manyRenewDeadline, RetryPeriod: manyRetry,
			RenewInterval: manyRenewInterval, Grace: manyGrace,
			Lead: func(term *election.Term) {
				end := e.checker.Begin(term.Identity(), term.Token())
				defer end()
				c.getsAtLead.Store(c.store.gets.Load())
				poke()
				<-term.Done()
			},
			Logger: log.With("election", e.name, "candidate", id),
		})
		if err != nil {
			t.Fatal(err)
		}
		c.elector = el
		running.Add(2)
		go func() {
			defer running.Done()
			if err := el.Run(ctx); err != nil {
				t.Errorf("%s: candidate %s: Run: %v", e.name, id, err)
			}
		}()
		statuses, stop := el.Subscribe()
		go func() {
			defer running.Done()
			defer stop()
			for {
				select {
				case <-statuses:
					poke()
				case <-ctx.Done():
					return
				}
			}
		}()
		return c
	}
	waitFor := func(timeout time.Duration, what string, missing func(e *manyElection) bool) bool {
		t.Helper()
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		for {
			var behind []string
			for _, e := range elections {
				if missing(e) {
					behind = append(behind, e.name)
				}
			}
			if len(behind) == 0 {
				return true
			}
			select {
			case <-changed:
			case <-deadline.C:
				t.Errorf("not within %v: %s, in %d of %d elections (%s)", timeout, what, len(behind), len(elections), abbreviate(behind))
				return false
			}
		}
	}

	began := time.Now()
	for _, e := range elections {
		e.a = start(e, "a")
	}
	if !waitFor(manyWait, "candidate a leads", func(e *manyElection) bool { return len(e.checker.Active()) != 1 }) {
		t.FailNow()
	}
	for _, e := range elections {
		e.b = start(e, "b")
	}
	if !waitFor(manyWait, "candidate b follows a, watching the record", func(e *manyElection) bool {
		st := e.b.elector.Status()
		return !e.b.store.watching.Load() || st.State != election.StateFollowing || !st.Known || st.Leader != "a"
	}) {
		t.FailNow()
	}
	t.Logf("%d elections, %d candidates, settled in %v", len(elections), 2*len(elections), time.Since(began).Round(time.Millisecond))

	if n := inotifyInstances(t) - baseline; n > 1 {
		t.Errorf("the %d candidates' watches hold %d inotify instances, want one for the folder", 2*len(elections), n)
	}
	// Every other process of the user shares the per-user limit.
	if fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC); err != nil {
		t.Errorf("with the %d watches open, no inotify instance is left for anybody else of this user: %v (fs.inotify.max_user_instances is %s)",
			2*len(elections), err, strings.TrimSpace(readFile(t, "/proc/sys/fs/inotify/max_user_instances")))
	} else {
		syscall.Close(fd)
	}

	// Every leader resigns: every follower must take over, told by its
	// watch, without reading the record.
	for _, e := range elections {
		e.getsBefore = e.b.store.gets.Load()
	}
	resigned := time.Now()
	for _, e := range elections {
		if err := e.a.elector.Resign(); err != nil {
			t.Fatalf("%s: a resigns: %v", e.name, err)
		}
	}
	if waitFor(takeOverWithin, "b took over after a resigned", func(e *manyElection) bool {
		active := e.checker.Active()
		return len(active) != 1 || active[0].Identity != "b"
	}) {
		t.Logf("every follower took over within %v of the resignations", time.Since(resigned).Round(time.Millisecond))
	}
	var read []string
	for _, e := range elections {
		if len(e.checker.Active()) == 1 && e.b.getsAtLead.Load() != e.getsBefore {
			read = append(read, e.name)
		}
		for _, v := range e.checker.Violations() {
			t.Errorf("%s: %s", e.name, v)
		}
	}
	if len(read) > 0 {
		t.Errorf("in %d elections the follower read the record before it took over, instead of being told by its watch (%s)", len(read), abbreviate(read))
	}
}

type manyElection struct {
	name       string
	checker    *electiontest.Checker
	a, b       *manyCandidate
	getsBefore int64 // b's reads before a resigned
}

type manyCandidate struct {
	id         string
	store      *countingStore
	elector    *election.Elector
	getsAtLead atomic.Int64 // the store's reads when its term began
}

// countingStore counts reads, and says when a watch has started.
type countingStore struct {
	store.Store
	gets     atomic.Int64
	watching atomic.Bool
	watched  func()
}

func (s *countingStore) Get(ctx context.Context) (store.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx)
}

func (s *countingStore) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	ch, err := s.Store.Watch(ctx, after)
	if err == nil {
		s.watching.Store(true)
		s.watched()
	}
	return ch, err
}

// inotifyInstances counts this process's inotify instances.
func inotifyInstances(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// abbreviate lists the first few names, and how many more there are.
func abbreviate(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

// A Dir's notification watch exists only while a Watch of its Stores runs:
// one for any number of Watches, none once they have all ended.
func TestDirNotifiesOnlyWhileWatched(t *testing.T) {
	baseline := inotifyInstances(t)
	d := openDir(t, t.TempDir(), file.Options{})
	if n := inotifyInstances(t) - baseline; n != 0 {
		t.Fatalf("OpenDir set up %d inotify instances, want none before a Watch", n)
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		var watches []<-chan store.Event
		for i := range 20 {
			ch, err := dirStore(t, d, fmt.Sprintf("lease-%d", i%5)).Watch(ctx, "")
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			watches = append(watches, ch)
		}
		if n := inotifyInstances(t) - baseline; n != 1 {
			t.Errorf("round %d: %d Watches hold %d inotify instances, want 1", round, len(watches), n)
		}
		cancel()
		for _, ch := range watches {
			for range ch { // a Watch's channel is closed once it has let go of the notifications
			}
		}
		if n := inotifyInstances(t) - baseline; n != 0 {
			t.Errorf("round %d: once every Watch ended, %d inotify instances are left, want none", round, n)
		}
	}
}
