package kube_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// counting counts the requests made through a rest.Config, by method.
type counting struct {
	mu      sync.Mutex
	seen    map[string]int
	counted chan struct{} // signalled after each request counted
}

func (c *counting) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	c.seen = map[string]int{}
	c.counted = make(chan struct{}, 1)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			verb := r.Method
			if r.URL.Query().Get("watch") == "true" {
				verb = "WATCH"
			} else if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/leases") {
				verb = "LIST"
			}
			c.mu.Lock()
			c.seen[verb]++
			c.mu.Unlock()
			select {
			case c.counted <- struct{}{}:
			default:
			}
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

func (c *counting) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// runElections runs one candidate in each of n elections on c, and waits
// until every one leads.
func runElections(t *testing.T, c *kube.Client, ns, prefix string, n int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	led := make(chan string, n)
	for i := range n {
		st, err := c.Store(ns, fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		e, err := election.New(election.Config{Store: st, Identity: "only", Logger: slog.New(slog.DiscardHandler),
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond, Grace: 500 * time.Millisecond,
			Lead: func(term *election.Term) {
				led <- st.Name()
				<-term.Done()
			}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := e.Run(ctx); err != nil {
				t.Errorf("Run %s: %v", st.Name(), err)
			}
		})
	}
	stop = func() { cancel(); wg.Wait() }
	deadline := time.After(time.Minute)
	for range n {
		select {
		case <-led:
		case <-deadline:
			stop()
			t.Fatalf("not every one of %d elections led within a minute", n)
		}
	}
	return stop
}

// Elections on one Client share its watch: they start following without a
// read of their own. All their requests until each leads are the shared
// watch's list and watch, each election's acquisition, and its first
// renewal (which records the term's token).
func TestElectionsOfOneClientMakeNoReadsOfTheirOwn(t *testing.T) {
	var cnt counting
	c, err := kube.NewClient(cnt.wrap(env.Config), kube.ClientOptions{Watch: kube.WatchNamespace})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	stop := runElections(t, c, namespace, "no-reads", n)
	defer stop()
	// Every first renewal has been sent once the shared watch told the
	// terms' tokens; wait for those writes to have been counted.
	deadline := time.After(30 * time.Second)
	for cnt.counts()["PUT"] < n {
		select {
		case <-cnt.counted:
		case <-deadline:
			t.Fatalf("requests after 30s: %v; want at least %d PUT (first renewals)", cnt.counts(), n)
		}
	}
	got := cnt.counts()
	if got["GET"] != 0 || got["POST"] != n || got["LIST"] != 1 || got["WATCH"] != 1 || got["PUT"] < n {
		t.Fatalf("requests until %d elections led: %v; want no GET, %d POST (the acquisitions), one LIST and one WATCH (the shared watch), and at least %d PUT (first renewals)", n, got, n, n)
	}
}

// A user whose Role names its Leases (resourceNames) cannot list or watch
// the namespace's Leases: under WatchAuto the Client says so once and its
// elections watch their own Leases; under WatchNamespace a Watch fails with
// the refusal, naming the verbs.
func TestSharedWatchRefusedByRBAC(t *testing.T) {
	ctx := context.Background()
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"rbac-named-0", "rbac-named-1", "rbac-named-2"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "named-leases", Namespace: namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			ResourceNames: names, Verbs: []string{"get", "watch", "update"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}}}}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "named-leases", Namespace: namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "named-leases"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "named-leases-user"}}}
	if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user, err := env.User("named-leases-user")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("auto falls back", func(t *testing.T) {
		var logs syncBuffer
		c, err := kube.NewClient(user, kube.ClientOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		stop := runElections(t, c, namespace, "rbac-named", len(names))
		stop()
		if n := strings.Count(logs.String(), "cannot watch all the Leases of the namespace at once"); n != 1 {
			t.Fatalf("the fallback was logged %d times, want once:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), `verbs \"list\" and \"watch\"`) {
			t.Fatalf("the fallback's log does not name the verbs:\n%s", logs.String())
		}
	})

	t.Run("namespace mode reports the refusal", func(t *testing.T) {
		c, err := kube.NewClient(user, kube.ClientOptions{Watch: kube.WatchNamespace})
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Store(namespace, names[0])
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// The refusal comes from the shared watch's list: the first Watch
		// ends, and from then on Watch fails with it.
		ch, err := st.Watch(wctx, "")
		if err == nil {
			for range ch {
			}
			ch, err = st.Watch(wctx, "")
		}
		if err == nil || !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), `verb "list"`) {
			t.Fatalf("Watch under a Role with resourceNames: %v, %v; want an ErrPermission naming verb list", ch, err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
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

// A subscriber of the shared watch that does not read does not hold up
// another: the other sees every change at once; the slow one, when it
// reads, gets the newest state last.
func TestSlowSubscriberDoesNotHoldUpTheSharedWatch(t *testing.T) {
	c, err := kube.NewClient(env.Config, kube.ClientOptions{Watch: kube.WatchNamespace})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := kube.New(env.Config, namespace, "slow-subscriber", kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := writer.Create(ctx, store.Record{Holder: "w", LeaseDuration: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	slowStore, _ := c.Store(namespace, "slow-subscriber")
	fastStore, _ := c.Store(namespace, "slow-subscriber")
	slow, err := slowStore.Watch(ctx, cur.Version)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := fastStore.Watch(ctx, cur.Version)
	if err != nil {
		t.Fatal(err)
	}
	const writes = 20 // more than a subscriber's channel holds
	for i := range writes {
		next := cur
		next.Transitions = int64(i + 1)
		if cur, err = writer.Update(ctx, next); err != nil {
			t.Fatal(err)
		}
		ev := <-fast
		if ev.Err != nil || ev.Record.Version != cur.Version {
			t.Fatalf("write %d: the reading subscriber got %+v, want version %s at once", i, ev, cur.Version)
		}
	}
	var last store.Event
	for last.Record.Version != cur.Version {
		select {
		case ev, ok := <-slow:
			if !ok {
				t.Fatalf("the slow subscriber's watch ended; last event %+v", last)
			}
			last = ev
		case <-ctx.Done():
			t.Fatalf("the slow subscriber never got the newest version %s; last %+v", cur.Version, last)
		}
	}
}
