package sidecar

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

// An acknowledgement sent the moment the status says the term ended is
// accepted: the step-down is known before anyone can be told of it.
func TestAckAtTheMomentTheTermEnds(t *testing.T) {
	for i := range 50 {
		var grace *AppGrace
		e, err := election.New(election.Config{Store: memory.New("ack"), Identity: "a", Lead: func(t *election.Term) { grace.Lead(t) },
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		grace = NewAppGrace(time.Minute, e.Status, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		statuses, unsubscribe := e.Subscribe()
		for s := range statuses {
			if s.IsLeader {
				break
			}
		}
		if err := grace.Ack(0); err == nil {
			t.Fatal("an acknowledgement while leading was accepted")
		}
		if err := e.Resign(); err != nil {
			t.Fatal(err)
		}
		for s := range statuses {
			if !s.IsLeader {
				break
			}
		}
		unsubscribe()
		if err := grace.Ack(0); err != nil {
			t.Fatalf("round %d: the acknowledgement sent as soon as the status said the term ended: %v", i, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
