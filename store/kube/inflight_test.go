package kube

import (
	"context"
	"testing"
	"time"
)

// Waiters get slots urgent first, each class in order of arrival, but after
// urgentRun urgent grants in a row a waiting other one gets a turn; a
// waiter whose context ends gives up its place, and a slot granted as its
// context ended is passed on, not lost.
func TestInflightOrderAndFairness(t *testing.T) {
	f := newInflight(1)
	ctx := context.Background()
	if err := f.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 32)
	wait := func(name string, urgent bool) {
		go func() {
			if err := f.acquire(ctx, urgent); err != nil {
				got <- "error " + name
				return
			}
			got <- name
		}()
	}
	queued := func(urgent, normal int) {
		deadline := time.After(10 * time.Second)
		for {
			f.mu.Lock()
			u, n := len(f.urgent), len(f.normal)
			f.mu.Unlock()
			if u == urgent && n == normal {
				return
			}
			select {
			case <-deadline:
				t.Fatalf("queues %d urgent, %d other; want %d, %d", u, n, urgent, normal)
			case <-time.After(time.Millisecond): // polling the queue lengths, which signal nothing
			}
		}
	}
	wait("n0", false)
	queued(0, 1)
	for i := range urgentRun + 1 {
		wait("u"+string(rune('a'+i)), true)
		queued(i+1, 1)
	}
	var order []string
	for range urgentRun + 2 {
		f.release()
		order = append(order, <-got)
	}
	want := []string{"ua", "ub", "uc", "ud", "ue", "uf", "ug", "uh", "n0", "ui"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("grants in order %v, want %v (urgent first, one other after %d urgent)", order, want, urgentRun)
		}
	}

	// A waiter that gives up leaves the queue; the slot goes to the next.
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- f.acquire(cctx, false) }()
	queued(0, 1)
	wait("after", false)
	queued(0, 2)
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("a waiter whose context ended got a slot")
	}
	f.release()
	if name := <-got; name != "after" {
		t.Fatalf("the slot went to %q, want the waiter after the one that gave up", name)
	}
	f.release()
	f.mu.Lock()
	free := f.free
	f.mu.Unlock()
	if free != 1 {
		t.Fatalf("%d free slots at the end, want the one there is", free)
	}
}
