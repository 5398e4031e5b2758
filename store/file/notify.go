package file

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// notifier is the one notification watch of a Dir's folder, shared by the
// Watches of the Dir's Stores and fanned out to them by record file name.
//
// It tells a Watch only that its record file may have changed, by a wake-up
// that never blocks: a Watch that has not taken the last one yet gets no
// second, so the notifier never waits for a slow Watch, and any number of
// changes collapse into one read of the file. A Watch reports what it reads
// from the file, as it did with a notification watch of its own, so the
// notifier changes none of its guarantees (see follow): states in order,
// the newest always, never a deletion merged away (a re-created record has
// a new incarnation). The notifier keeps no state of the records at all.
type notifier struct {
	w     *fsnotify.Watcher
	subs  map[string]map[*subscription]struct{} // by record file name (NAME.json)
	count int
}

// subscription is one Watch's share of its Dir's notifier.
type subscription struct {
	n    *notifier
	file string        // the record file's name, NAME.json
	wake chan struct{} // holds a wake-up: the record file may have changed
	err  error         // why the notifier broke (under Dir.mu); then the Watch ends
}

// subscribe registers a Watch of the record file named file with the
// folder's notifier, setting one up when there is none. Once it returns,
// every change to the file wakes the subscription. It returns nil when the
// Watch must poll instead: Options.Poll is set, or no notification watch can
// be set up (the per-user inotify limit is reached, say).
func (d *Dir) subscribe(file string) *subscription {
	if d.opts.Poll {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil
		}
		if err := w.Add(d.path); err != nil {
			w.Close()
			return nil
		}
		d.n = &notifier{w: w, subs: map[string]map[*subscription]struct{}{}}
		go d.dispatch(d.n)
	}
	n := d.n
	s := &subscription{n: n, file: file, wake: make(chan struct{}, 1)}
	if n.subs[file] == nil {
		n.subs[file] = map[*subscription]struct{}{}
	}
	n.subs[file][s] = struct{}{}
	n.count++
	return s
}

// unsubscribe ends s. The last subscription of a notifier closes it.
func (d *Dir) unsubscribe(s *subscription) {
	d.mu.Lock()
	n := s.n
	subs := n.subs[s.file]
	if _, ok := subs[s]; !ok {
		d.mu.Unlock()
		return // dropped when the notifier broke
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(n.subs, s.file)
	}
	n.count--
	last := n.count == 0
	if last && d.n == n {
		d.n = nil
	}
	d.mu.Unlock()
	if last {
		n.w.Close()
	}
}

// broken returns why the notifier of s broke, or nil.
func (d *Dir) broken(s *subscription) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return s.err
}

// dispatch wakes the subscriptions of each file that changed, until the
// notifier is closed or breaks.
func (d *Dir) dispatch(n *notifier) {
	for {
		select {
		case ev, open := <-n.w.Events:
			switch {
			case !open:
				d.fail(n, errors.New("notifications stopped"))
				return
			case ev.Name == d.path && ev.Has(fsnotify.Remove|fsnotify.Rename):
				d.fail(n, fmt.Errorf("folder %s was removed or renamed", d.path))
				return
			default:
				d.wake(n, filepath.Base(ev.Name))
			}
		case err, open := <-n.w.Errors:
			switch {
			case !open:
				d.fail(n, errors.New("notifications stopped"))
				return
			case errors.Is(err, fsnotify.ErrEventOverflow):
				d.wake(n, "") // events were lost: every Watch reads its record
			default:
				d.fail(n, err)
				return
			}
		}
	}
}

// wake wakes the subscriptions of the record file named file, or all of
// them when file is empty. It never blocks.
func (d *Dir) wake(n *notifier, file string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if file != "" {
		wakeAll(n.subs[file])
		return
	}
	for _, subs := range n.subs {
		wakeAll(subs)
	}
}

func wakeAll(subs map[*subscription]struct{}) {
	for s := range subs {
		select {
		case s.wake <- struct{}{}:
		default: // already woken: it reads the file once for both
		}
	}
}

// fail ends every subscription of n with err and closes n, which the next
// Watch replaces. A notifier closed by its last unsubscribe has none left.
func (d *Dir) fail(n *notifier, err error) {
	d.mu.Lock()
	if d.n == n {
		d.n = nil
	}
	for _, subs := range n.subs {
		for s := range subs {
			s.err = err
		}
		wakeAll(subs)
	}
	clear(n.subs)
	n.count = 0
	d.mu.Unlock()
	n.w.Close()
}
