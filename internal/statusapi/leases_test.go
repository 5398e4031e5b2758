package statusapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

// several returns the elections of a sidecar holding three leases: a (its
// candidate leads), b (it follows) and c (its elector has not run: the
// lease was never read).
func several(t *testing.T) []Election {
	t.Helper()
	leader, _ := pair(t)
	_, follower := pair(t)
	unread, err := election.New(election.Config{Store: memory.New("c"), Identity: "a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return []Election{{Lease: "a", Source: leader}, {Lease: "b", Source: follower}, {Lease: "c", Source: unread}}
}

func serveSeveral(t *testing.T, es []Election) *httptest.Server {
	t.Helper()
	h, err := New(Options{Elections: es, Namespace: "ns", Heartbeat: 50 * time.Millisecond,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestSeveralLeases(t *testing.T) {
	es := several(t)
	srv := serveSeveral(t, es)

	code, body := get(t, srv.URL+"/v1/leases")
	var all Leases
	if err := json.Unmarshal([]byte(body), &all); code != 200 || err != nil {
		t.Fatalf("/v1/leases: %d %q (%v)", code, body, err)
	}
	if len(all.Items) != 3 {
		t.Fatalf("/v1/leases lists %d leases, want 3: %s", len(all.Items), body)
	}
	for i, want := range []struct {
		lease    string
		isLeader bool
		known    bool
	}{{"a", true, true}, {"b", false, true}, {"c", false, false}} {
		v := all.Items[i]
		if v.Lease != want.lease || v.Namespace != "ns" || v.IsLeader != want.isLeader || v.Known != want.known {
			t.Errorf("/v1/leases item %d = %+v; want lease %s, isLeader %v, known %v", i, v, want.lease, want.isLeader, want.known)
		}
	}
	for _, e := range es {
		code, body := get(t, srv.URL+"/v1/leases/"+e.Lease+"/status")
		var v View
		if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || v.Lease != e.Lease || v.IsLeader != e.Source.Status().IsLeader {
			t.Errorf("/v1/leases/%s/status: %d %q", e.Lease, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/v1/leases/zz/status"); code != 404 || !strings.Contains(body, `does not hold lease "zz"; it holds a, b, c`) {
		t.Errorf("an unknown lease: %d %q", code, body)
	}

	// The endpoints of one election refuse, naming the per-lease paths.
	for path, names := range map[string]string{
		"/v1/status":     "GET /v1/leases/NAME/status",
		"/v1/watch":      "GET /v1/leases/NAME/watch",
		"/":              "GET /v1/leases/NAME/status",
		"/readyz/leader": "GET /v1/leases/NAME/status",
	} {
		code, body := get(t, srv.URL+path)
		if code != 400 || !strings.Contains(body, "this sidecar holds several leases (a, b, c)") || !strings.Contains(body, names) ||
			!strings.Contains(body, "GET /v1/leases for every lease") {
			t.Errorf("%s with several leases: %d %q; want 400 naming %s", path, code, body, names)
		}
	}

	// Ready once every lease was read; c never was.
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || body != "starting: not read yet: lease c\n" {
		t.Errorf("/readyz with lease c unread: %d %q", code, body)
	}
	if code, body := get(t, serveSeveral(t, es[:2]).URL+"/readyz"); code != 200 {
		t.Errorf("/readyz with every lease read: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	broken := []Election{es[0], {Lease: "b", Source: unhealthy{es[1].Source.(*election.Elector)}}}
	if code, body := get(t, serveSeveral(t, broken).URL+"/healthz"); code != 503 || body != "unhealthy: lease b: the leader has not renewed\n" {
		t.Errorf("/healthz with lease b broken: %d %q", code, body)
	}

	// Each lease's watch streams that lease.
	resp, err := http.Get(srv.URL + "/v1/leases/b/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v := next(t, events(t, resp.Body)); v.Lease != "b" || v.IsLeader || v.Leader == "" {
		t.Errorf("first event of b's watch: %+v", v)
	}
}

// A sidecar of one lease serves the per-lease paths too, and its endpoints
// of one election as before.
func TestOneLeaseServesThePerLeasePaths(t *testing.T) {
	leader, _ := pair(t)
	srv := serve(t, leader)
	code, body := get(t, srv.URL+"/v1/leases")
	var all Leases
	if err := json.Unmarshal([]byte(body), &all); code != 200 || err != nil || len(all.Items) != 1 || all.Items[0].Lease != "db" || !all.Items[0].IsLeader {
		t.Errorf("/v1/leases: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/v1/leases/db/status"); code != 200 || !strings.Contains(body, `"isLeader":true`) {
		t.Errorf("/v1/leases/db/status: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/v1/status"); code != 200 {
		t.Errorf("/v1/status: %d", code)
	}
}

func TestNewRejectsBadElections(t *testing.T) {
	leader, _ := pair(t)
	for _, o := range []Options{
		{Source: leader, Elections: []Election{{Lease: "a", Source: leader}}},
		{Elections: []Election{{Lease: "a", Source: leader}, {Lease: "a", Source: leader}}},
		{Elections: []Election{{Lease: "", Source: leader}}},
		{Elections: []Election{{Lease: "a"}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
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

// The control endpoint of several leases: acknowledgements per lease, the
// paths of one election refused, a withdrawal that names every lease.
func TestControlOfSeveralLeases(t *testing.T) {
	es := several(t)
	var acked []string
	for i := range es {
		if es[i].Lease == "c" {
			continue // it does not wait for an application
		}
		es[i].Acknowledge = func(term int64) error {
			if term == 7 {
				return errors.New("the step-down under way is of term 6, not 7")
			}
			acked = append(acked, es[i].Lease)
			return nil
		}
	}
	var withdrawn atomic.Int32
	h, err := NewControl(ControlOptions{Elections: es, Namespace: "ns", Withdraw: func() { withdrawn.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, body := post(t, srv.URL+"/v1/leases/b/stepped-down"); code != 200 {
		t.Errorf("POST /v1/leases/b/stepped-down: %d %q", code, body)
	}
	if code, body := post(t, srv.URL+"/v1/leases/a/stepped-down?term=7"); code != 409 || !strings.Contains(body, "not 7") {
		t.Errorf("POST /v1/leases/a/stepped-down?term=7: %d %q", code, body)
	}
	if code, body := post(t, srv.URL+"/v1/leases/c/stepped-down"); code != 409 || !strings.Contains(body, "does not wait for an application") {
		t.Errorf("POST /v1/leases/c/stepped-down: %d %q", code, body)
	}
	if code, _ := post(t, srv.URL+"/v1/leases/zz/stepped-down"); code != 404 {
		t.Errorf("POST /v1/leases/zz/stepped-down: %d, want 404", code)
	}
	if len(acked) != 1 || acked[0] != "b" {
		t.Errorf("acknowledged %v, want [b]", acked)
	}
	if code, body := post(t, srv.URL+"/v1/stepped-down"); code != 400 || !strings.Contains(body, "POST /v1/leases/NAME/stepped-down") {
		t.Errorf("POST /v1/stepped-down with several leases: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/v1/status"); code != 400 || !strings.Contains(body, "GET /v1/leases/NAME/status") {
		t.Errorf("GET /v1/status on the control endpoint: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/v1/leases"); code != 200 || strings.Count(body, `"lease":`) != 3 {
		t.Errorf("GET /v1/leases on the control endpoint: %d %q", code, body)
	}

	if code, body := post(t, srv.URL+"/v1/withdraw?lease=a"); code != 409 || !strings.Contains(body, "campaigns for leases a, b, c, not a") {
		t.Errorf("a withdrawal naming one lease of three: %d %q", code, body)
	}
	if withdrawn.Load() != 0 {
		t.Fatal("a refused withdrawal withdrew")
	}
	if code, body := post(t, srv.URL+"/v1/withdraw?lease="+url.QueryEscape("c,a,b")); code != 202 || withdrawn.Load() != 1 {
		t.Errorf("a withdrawal naming every lease: %d %q (withdrawn %d)", code, body, withdrawn.Load())
	}
	if code, _ := post(t, srv.URL+"/v1/withdraw"); code != 202 || withdrawn.Load() != 2 {
		t.Errorf("a withdrawal naming no lease: %d (withdrawn %d)", code, withdrawn.Load())
	}
}
