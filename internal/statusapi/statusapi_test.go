package statusapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

const wait = 10 * time.Second

// pair runs two real electors on one in-memory store and returns them once
// one of them leads: (leader, follower).
func pair(t testing.TB) (*election.Elector, *election.Elector) {
	t.Helper()
	st := memory.New("db")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var es []*election.Elector
	for _, id := range []string{"a", "b"} {
		e, err := election.New(election.Config{Store: st, Identity: id, LeaseDuration: 3 * time.Second,
			RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond, Grace: 500 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
		wg.Go(func() { _ = e.Run(ctx) })
	}
	cha, ca := es[0].Subscribe()
	defer ca()
	chb, cb := es[1].Subscribe()
	defer cb()
	timeout := time.After(wait)
	var a, b election.Status
	for {
		select {
		case a = <-cha:
		case b = <-chb:
		case <-timeout:
			t.Fatalf("no leader elected: %+v, %+v", a, b)
		}
		if a.IsLeader && b.Known && b.Leader == "a" {
			return es[0], es[1]
		}
		if b.IsLeader && a.Known && a.Leader == "b" {
			return es[1], es[0]
		}
	}
}

func serve(t *testing.T, src Source) *httptest.Server {
	t.Helper()
	h, err := New(Options{Source: src, Lease: "db", Namespace: "ns",
		Metrics:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics\n") }),
		Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	leader, follower := pair(t)
	ls, fs := serve(t, leader), serve(t, follower)
	lid := leader.Status().Identity

	for _, s := range []*httptest.Server{ls, fs} {
		code, body := get(t, s.URL+"/v1/status")
		var v View
		if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
			t.Fatalf("/v1/status: %d %q (%v)", code, body, err)
		}
		if v.Leader != lid || v.Lease != "db" || v.Namespace != "ns" || !v.Known || v.LeaseDurationSeconds != 3 || v.RenewedAt == nil {
			t.Errorf("/v1/status = %+v", v)
		}
		if v.IsLeader != (s == ls) {
			t.Errorf("isLeader = %v on %s", v.IsLeader, v.Identity)
		}
		if code, body := get(t, s.URL+"/"); code != 200 || strings.TrimSpace(body) != `{"name":"`+lid+`"}` {
			t.Errorf("/: %d %q", code, body)
		}
		if code, _ := get(t, s.URL+"/healthz"); code != 200 {
			t.Errorf("/healthz: %d", code)
		}
		if code, body := get(t, s.URL+"/metrics"); code != 200 || body != "metrics\n" {
			t.Errorf("/metrics: %d %q", code, body)
		}
		if code, _ := get(t, s.URL+"/nope"); code != 404 {
			t.Errorf("/nope: %d, want 404", code)
		}
		resp, err := http.Post(s.URL+"/v1/status", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("POST /v1/status: %d, want 405", resp.StatusCode)
		}
	}
	if code, _ := get(t, ls.URL+"/readyz/leader"); code != 200 {
		t.Errorf("leader /readyz/leader: %d", code)
	}
	if code, _ := get(t, fs.URL+"/readyz/leader"); code != 503 {
		t.Errorf("follower /readyz/leader: %d", code)
	}
}

type unhealthy struct{ *election.Elector }

func (unhealthy) Check() error { return errors.New("the leader has not renewed") }

func TestHealthzReportsCheck(t *testing.T) {
	leader, _ := pair(t)
	code, body := get(t, serve(t, unhealthy{leader}).URL+"/healthz")
	if code != 503 || !strings.Contains(body, "the leader has not renewed") {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

// events reads SSE "data:" payloads from a stream.
func events(t *testing.T, body io.Reader) <-chan View {
	out := make(chan View, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			line := sc.Text()
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var v View
				if err := json.Unmarshal([]byte(data), &v); err != nil {
					t.Errorf("bad event %q: %v", data, err)
					return
				}
				out <- v
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan View) View {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("watch stream ended")
		}
		return v
	case <-time.After(wait):
		t.Fatal("no watch event")
	}
	return View{}
}

func TestWatchStreamsEveryChange(t *testing.T) {
	leader, follower := pair(t)
	fs := serve(t, follower)
	resp, err := http.Get(fs.URL + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := events(t, resp.Body)
	first := next(t, ch)
	if first.Leader != leader.Status().Identity || first.IsLeader {
		t.Fatalf("first event %+v", first)
	}
	if err := leader.Resign(); err != nil {
		t.Fatal(err)
	}
	// The follower must be told of the change, and end up leading with a
	// larger token. A known term never goes backwards (0 means not known:
	// a free lease, or a new holder that has not recorded its term yet).
	last := first.Term
	v := next(t, ch)
	for ; !v.IsLeader; v = next(t, ch) {
		if v.Term != 0 && v.Term < last {
			t.Fatalf("term went backwards: %+v after term %d", v, last)
		}
		last = max(last, v.Term)
	}
	if v.Term <= first.Term {
		t.Errorf("the new leader's term %d is not above the old one's %d", v.Term, first.Term)
	}
}

func TestWatchEndsWithTheClient(t *testing.T) {
	leader, _ := pair(t)
	h, err := New(Options{Source: leader})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/v1/watch", nil).WithContext(ctx)
	pr, pw := io.Pipe()
	w := &pipeWriter{ResponseWriter: httptest.NewRecorder(), w: pw}
	done := make(chan struct{})
	go func() { defer close(done); h.ServeHTTP(w, r); pw.Close() }()
	if v := next(t, events(t, pr)); !v.IsLeader {
		t.Fatalf("first event %+v", v)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("watch handler did not return after the client left")
	}
}

type pipeWriter struct {
	http.ResponseWriter
	w io.Writer
}

func (p *pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeWriter) Flush()                      {}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a Source succeeded")
	}
	leader, _ := pair(t)
	if _, err := New(Options{Source: leader, Heartbeat: -time.Second}); err == nil {
		t.Error("New with a negative heartbeat succeeded")
	}
}

// validUntil never promises more than the grace from now: a term that ends
// early is handed over a grace after its end, whatever its deadline.
func TestValidUntilIsBoundedByTheGrace(t *testing.T) {
	s := election.Status{State: election.StateLeading, IsLeader: true, Deadline: time.Now().Add(time.Hour)}
	v := ViewOf(s, "db", "ns", time.Second)
	if v.ValidUntil == nil || v.ValidUntil.After(time.Now().Add(time.Second)) || *v.ValidForSeconds > 1 {
		t.Errorf("validUntil %v (%v s) with a 1s grace and an hour left; want at most a second from now", v.ValidUntil, v.ValidForSeconds)
	}
	s.Deadline = time.Now().Add(100 * time.Millisecond)
	if v := ViewOf(s, "db", "ns", time.Second); v.ValidUntil.After(s.Deadline) {
		t.Errorf("validUntil %v after the term's deadline %v", v.ValidUntil, s.Deadline)
	}
}
