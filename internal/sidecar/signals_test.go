package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

// syncBuffer is a log destination that Run's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunLogsTheShutdownSignal sends the test process SIGINT and SIGTERM
// while Run leads: each run must log which one it received, as a field,
// before it releases the lease. The signal reaches Run through its own
// handler, and also through a parent context from NotifyShutdown as in the
// binary: whichever handler sees it first, the log names the signal.
func TestRunLogsTheShutdownSignal(t *testing.T) {
	for _, c := range []struct {
		sig    syscall.Signal
		name   string
		parent func() (context.Context, context.CancelFunc)
	}{
		{syscall.SIGINT, "SIGINT", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{syscall.SIGTERM, "SIGTERM", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{syscall.SIGTERM, "SIGTERM", func() (context.Context, context.CancelFunc) { return NotifyShutdown(context.Background()) }},
	} {
		st := memory.New("db")
		started := make(chan struct{}, 1)
		e := newElector(t, st, func(term *election.Term) { started <- struct{}{}; <-term.Done() })
		var logs syncBuffer
		s := &Sidecar{Elector: e, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		ctx, stop := c.parent()
		res := make(chan error, 1)
		go func() { _, err := s.Run(ctx); res <- err }()
		within(t, started, "a term")
		if err := syscall.Kill(os.Getpid(), c.sig); err != nil {
			t.Fatal(err)
		}
		if err := within(t, res, "Run to return after "+c.name); err != nil {
			t.Errorf("%s: Run: %v", c.name, err)
		}
		stop()
		var found int
		for line := range strings.Lines(logs.String()) {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("%s: not JSON: %q", c.name, line)
			}
			if l["msg"] == "shutting down" && l["signal"] == c.name {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%s: want one \"shutting down\" record with signal=%s, got %d; logs:\n%s", c.name, c.name, found, logs.String())
		}
		if rec, err := st.Get(context.Background()); err != nil || rec.Held() {
			t.Errorf("%s: lease after the signal: %+v, %v; want released", c.name, rec, err)
		}
	}
}
