//go:build node

package node

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// moment is a value seen at a time, by a watch.
type moment struct {
	at    time.Time
	value string
}

// timeline is the history of one value (the ready endpoints of a Service,
// the holder of a Lease) as a watch saw it, stamped on arrival with this
// process's clock.
type timeline struct {
	mu      sync.Mutex
	seen    []moment
	changed chan struct{}
}

func newTimeline() *timeline { return &timeline{changed: make(chan struct{})} }

func (tl *timeline) record(v string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if n := len(tl.seen); n > 0 && tl.seen[n-1].value == v {
		return
	}
	tl.seen = append(tl.seen, moment{time.Now(), v})
	close(tl.changed)
	tl.changed = make(chan struct{})
}

// snapshot returns the history so far and a channel closed at its next change.
func (tl *timeline) snapshot() ([]moment, <-chan struct{}) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.seen), tl.changed
}

// last is the latest value.
func (tl *timeline) last() moment {
	s, _ := tl.snapshot()
	if len(s) == 0 {
		return moment{}
	}
	return s[len(s)-1]
}

// await returns the first moment at or after since whose value satisfies
// cond, waiting up to d for it.
func (tl *timeline) await(t *testing.T, since time.Time, d time.Duration, what string, cond func(string) bool) moment {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		seen, changed := tl.snapshot()
		for i, m := range seen {
			if i+1 < len(seen) && !seen[i+1].at.After(since) {
				continue // superseded before since
			}
			if !cond(m.value) {
				continue
			}
			if m.at.Before(since) {
				m.at = since // the value current at since counts from since
			}
			return m
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waiting %v for %s; seen: %v", d, what, seen)
		}
	}
}

// longestGap is the longest stretch within [from, to] during which the
// value was empty, and how many times it changed from one non-empty value
// to another non-empty one or through empty (leader changes).
func (tl *timeline) longestGap(from, to time.Time) (gap time.Duration, changes int) {
	seen, _ := tl.snapshot()
	var emptySince time.Time
	prev := ""
	for i, m := range seen {
		at := m.at
		if i+1 < len(seen) && !seen[i+1].at.After(from) {
			prev = m.value
			continue // superseded before the window
		}
		if at.Before(from) {
			at = from
		}
		if at.After(to) {
			break
		}
		if m.value == "" {
			if emptySince.IsZero() {
				emptySince = at
			}
		} else {
			if !emptySince.IsZero() {
				gap = max(gap, at.Sub(emptySince))
				emptySince = time.Time{}
			}
			if prev != "" && prev != m.value {
				changes++
			}
			prev = m.value
		}
	}
	if !emptySince.IsZero() {
		gap = max(gap, to.Sub(emptySince))
	}
	return gap, changes
}

// watchLoop lists and watches until ctx ends, calling state with every
// list and event; it re-lists when a watch ends.
func watchLoop(ctx context.Context, list func() (string, error), watchFrom func(rv string) (watch.Interface, error), event func(watch.Event)) {
	for ctx.Err() == nil {
		rv, err := list()
		if err != nil {
			time.Sleep(100 * time.Millisecond) // the API server is busy or restarting
			continue
		}
		w, err := watchFrom(rv)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // as above
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			event(ev)
		}
		w.Stop()
	}
}

// watchEndpoints follows the ready endpoints of a Service: each value is
// the sorted, comma-separated names of the pods listed ready in its
// EndpointSlices ("" for none).
func watchEndpoints(t *testing.T, ns, svc string) *timeline {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tl := newTimeline()
	api := node.Client().DiscoveryV1().EndpointSlices(ns)
	sel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc}
	slicesByName := map[string]*discoveryv1.EndpointSlice{}
	update := func() {
		var ready []string
		for _, s := range slicesByName {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && e.TargetRef != nil && !slices.Contains(ready, e.TargetRef.Name) {
					ready = append(ready, e.TargetRef.Name)
				}
			}
		}
		slices.Sort(ready)
		tl.record(strings.Join(ready, ","))
	}
	go watchLoop(ctx, func() (string, error) {
		l, err := api.List(ctx, sel)
		if err != nil {
			return "", err
		}
		clear(slicesByName)
		for i := range l.Items {
			slicesByName[l.Items[i].Name] = &l.Items[i]
		}
		update()
		return l.ResourceVersion, nil
	}, func(rv string) (watch.Interface, error) {
		o := sel
		o.ResourceVersion = rv
		return api.Watch(ctx, o)
	}, func(ev watch.Event) {
		s, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
		if ev.Type == watch.Deleted {
			delete(slicesByName, s.Name)
		} else {
			slicesByName[s.Name] = s
		}
		update()
	})
	return tl
}

// watchHolder follows a Lease's holderIdentity ("" while released or absent).
func watchHolder(t *testing.T, ns, lease string) *timeline {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tl := newTimeline()
	api := node.Client().CoordinationV1().Leases(ns)
	sel := metav1.ListOptions{FieldSelector: "metadata.name=" + lease}
	holder := func(l *coordinationv1.Lease) string {
		if l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	go watchLoop(ctx, func() (string, error) {
		l, err := api.List(ctx, sel)
		if err != nil {
			return "", err
		}
		if len(l.Items) == 1 {
			tl.record(holder(&l.Items[0]))
		} else {
			tl.record("")
		}
		return l.ResourceVersion, nil
	}, func(rv string) (watch.Interface, error) {
		o := sel
		o.ResourceVersion = rv
		return api.Watch(ctx, o)
	}, func(ev watch.Event) {
		if l, ok := ev.Object.(*coordinationv1.Lease); ok {
			if ev.Type == watch.Deleted {
				tl.record("")
			} else {
				tl.record(holder(l))
			}
		}
	})
	return tl
}

// values returns every value current at some moment of [from, to].
func (tl *timeline) values(from, to time.Time) []string {
	seen, _ := tl.snapshot()
	var vs []string
	for i, m := range seen {
		if i+1 < len(seen) && !seen[i+1].at.After(from) {
			continue // superseded before the window
		}
		if m.at.After(to) {
			break
		}
		vs = append(vs, m.value)
	}
	return vs
}

func (m moment) String() string {
	v := m.value
	if v == "" {
		v = "(none)"
	}
	return m.at.Format("15:04:05.000") + " " + v
}
