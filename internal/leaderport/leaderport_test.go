package leaderport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestPortOpenOnlyWhileLeading(t *testing.T) {
	addr := freeAddr(t)
	p, err := New(addr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	terms := make(chan *election.Term, 1)
	returned := make(chan struct{}, 1)
	e, err := election.New(election.Config{Store: memory.New("db"), Identity: "a",
		Logger: slog.New(slog.DiscardHandler),
		Lead: func(term *election.Term) {
			terms <- term
			p.Lead(term)
			returned <- struct{}{}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("before any term: dial = %v, want connection refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = e.Run(ctx) })

	term := <-terms
	body := getWithin(t, "http://"+addr+"/anything", 10*time.Second)
	if !strings.Contains(body, `"isLeader":true`) {
		t.Errorf("leader port answered %q", body)
	}
	// An idle keep-alive connection must be cut too.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	term.Resign()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Lead did not return after the term ended")
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after the term: dial = %v, want connection refused", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Errorf("open connection after the term: read = %v, want closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// getWithin polls url until it answers (the listener opens asynchronously
// after the term starts), up to a deadline.
func getWithin(t *testing.T, url string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval of a bounded wait
	}
}

func TestNewRejectsBadAddresses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"not-an-address", "127.0.0.1:99999", busy.Addr().String()} {
		if _, err := New(addr, nil); err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("New(%q) = %v, want an error naming the address", addr, err)
		}
	}
}
