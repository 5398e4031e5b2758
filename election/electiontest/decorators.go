package electiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// op is one call to a recorded store.
type op struct {
	who    string // the candidate instance that called
	kind   string // "get", "create", "update" or "watch"
	holder string // the holder written, for create and update
	at     time.Time
	ok     bool // the call succeeded (set when it returns)
	done   bool // the call has returned
}

// opLog records, in one total order, the calls several candidates make to
// their stores.
type opLog struct {
	mu      sync.Mutex
	ops     []op
	changed chan struct{} // closed at the next change
}

func (l *opLog) begin(o op) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.at = time.Now()
	l.ops = append(l.ops, o)
	l.notify()
	return len(l.ops) - 1
}

func (l *opLog) end(i int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops[i].ok, l.ops[i].done = err == nil, true
	l.notify()
}

func (l *opLog) notify() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// await waits until the calls so far satisfy ok, and reports whether they
// did before timeout.
func (l *opLog) await(ok func([]op) bool, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if ok(l.ops) {
			l.mu.Unlock()
			return true
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

func (l *opLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ops)
}

func (l *opLog) snapshot() []op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]op(nil), l.ops...)
}

// recorded is a store.Store that records every call in a shared opLog.
type recorded struct {
	store.Store
	who string
	log *opLog
}

func (r *recorded) Get(ctx context.Context) (store.Record, error) {
	i := r.log.begin(op{who: r.who, kind: "get"})
	rec, err := r.Store.Get(ctx)
	r.log.end(i, err)
	return rec, err
}

func (r *recorded) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	i := r.log.begin(op{who: r.who, kind: "create", holder: rec.Holder})
	got, err := r.Store.Create(ctx, rec)
	r.log.end(i, err)
	return got, err
}

func (r *recorded) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	i := r.log.begin(op{who: r.who, kind: "update", holder: rec.Holder})
	got, err := r.Store.Update(ctx, rec)
	r.log.end(i, err)
	return got, err
}

func (r *recorded) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	i := r.log.begin(op{who: r.who, kind: "watch"})
	ch, err := r.Store.Watch(ctx, after)
	r.log.end(i, err)
	return ch, err
}

// errInjected is what a broken faulty store answers to every write.
var errInjected = errors.New("injected write failure")

// faulty is a store.Store whose writes all fail, without reaching the
// backend, once it is broken. It remembers when the last write that
// succeeded was sent.
type faulty struct {
	store.Store
	broken atomic.Bool

	mu     sync.Mutex
	lastOK time.Time     // send time of the latest successful write
	notify chan struct{} // closed at the next successful write
}

func (f *faulty) write(do func() (store.Record, error)) (store.Record, error) {
	sent := time.Now()
	if f.broken.Load() {
		return store.Record{}, fmt.Errorf("write %s: %w", f, errInjected)
	}
	rec, err := do()
	if err == nil {
		f.mu.Lock()
		if sent.After(f.lastOK) {
			f.lastOK = sent
		}
		if f.notify != nil {
			close(f.notify)
			f.notify = nil
		}
		f.mu.Unlock()
	}
	return rec, err
}

func (f *faulty) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	return f.write(func() (store.Record, error) { return f.Store.Create(ctx, rec) })
}

func (f *faulty) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	return f.write(func() (store.Record, error) { return f.Store.Update(ctx, rec) })
}

// succeeded returns a channel closed at the next successful write.
func (f *faulty) succeeded() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notify == nil {
		f.notify = make(chan struct{})
	}
	return f.notify
}

func (f *faulty) lastSuccess() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastOK
}
