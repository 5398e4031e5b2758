package sidecar

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

const wait = 10 * time.Second

type dutyFunc func(*election.Term)

func (f dutyFunc) Lead(t *election.Term) { f(t) }

func newElector(t *testing.T, st *memory.Store, lead func(*election.Term)) *election.Elector {
	t.Helper()
	e, err := election.New(election.Config{Store: st, Identity: "a", Lead: lead, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestLeadWaitsForEveryDuty(t *testing.T) {
	st := memory.New("db")
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	started := make(chan *election.Term, 1)
	fastReturned := make(chan struct{})
	slow := dutyFunc(func(term *election.Term) {
		started <- term
		<-term.Done()
		<-fastReturned // this duty stops only after the other one did
		note("slow duty returned")
	})
	fast := dutyFunc(func(term *election.Term) { <-term.Done(); note("fast duty returned"); close(fastReturned) })
	leadReturned := make(chan struct{})
	lead := Lead(slow, fast)
	e := newElector(t, st, func(term *election.Term) { lead(term); note("lead returned"); close(leadReturned) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	term := within(t, started, "a term")
	cancel()
	within(t, leadReturned, "Lead to return")
	<-done
	if term.Err() == nil {
		t.Error("term still running")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 3 || order[2] != "lead returned" {
		t.Errorf("order %v: Lead returned before its duties", order)
	}
}

func TestRunServesStopsAndForwards(t *testing.T) {
	st := memory.New("db")
	started := make(chan *election.Term, 1)
	e := newElector(t, st, Lead(dutyFunc(func(term *election.Term) { started <- term; <-term.Done() })))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	forwarded := make(chan os.Signal, 1)
	bgEnded := make(chan struct{})
	s := &Sidecar{
		Elector: e,
		Servers: []Server{{Name: "test", Listener: ln,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}},
		Background: []func(context.Context){func(ctx context.Context) { <-ctx.Done(); close(bgEnded) }},
		Forward:    func(sig os.Signal) error { forwarded <- sig; return nil },
		Logger:     slog.New(slog.DiscardHandler),
	}
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() { c, err := s.Run(context.Background()); res <- result{c, err} }()
	term := within(t, started, "a term")

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Errorf("status API answered %q", b)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if sig := within(t, forwarded, "the forwarded signal"); sig != syscall.SIGUSR1 {
		t.Errorf("forwarded %v", sig)
	}
	s.Stop(7)
	r := within(t, res, "Run to return")
	if r.code != 7 || r.err != nil {
		t.Errorf("Run = %d, %v; want 7, nil", r.code, r.err)
	}
	if err := term.Err(); err == nil {
		t.Error("term not ended by Stop")
	}
	select {
	case <-bgEnded:
	default:
		t.Error("Run returned before its background loop ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("status API still serving after Run returned")
	}
	rec, err := st.Get(context.Background())
	if err != nil || rec.Held() {
		t.Errorf("lease after Run: %+v, %v; want released", rec, err)
	}
}

func TestSIGTERMReleasesAndExitsZero(t *testing.T) {
	st := memory.New("db")
	started := make(chan struct{}, 1)
	e := newElector(t, st, func(term *election.Term) { started <- struct{}{}; <-term.Done() })
	s := &Sidecar{Elector: e, Logger: slog.New(slog.DiscardHandler)}
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() { c, err := s.Run(context.Background()); res <- result{c, err} }()
	within(t, started, "a term")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := within(t, res, "Run to return after SIGTERM")
	if r.code != 0 || r.err != nil {
		t.Errorf("Run = %d, %v; want 0, nil", r.code, r.err)
	}
	if rec, err := st.Get(context.Background()); err != nil || rec.Held() {
		t.Errorf("lease after SIGTERM: %+v, %v; want released", rec, err)
	}
}
