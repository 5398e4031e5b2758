package election_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/internal/testenv"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// env is the real kube-apiserver shared by this package's tests.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// Short timings that satisfy Config.Validate with margin to spare.
const (
	testLease = 2 * time.Second
	testRenew = time.Second
	testRetry = 250 * time.Millisecond
	testGrace = 500 * time.Millisecond
)

const ns = "default"

var leaseSeq atomic.Int64

// newLeaseName returns a lease name unique in this test run.
func newLeaseName(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d", strings.Trim(name, "-"), leaseSeq.Add(1))
}

func admin(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func kubeStore(t *testing.T, cfg *rest.Config, lease string) *kube.Store {
	t.Helper()
	return kubeStoreAt(t, cfg, ns, lease)
}

func kubeStoreIn(t *testing.T, namespace, lease string) *kube.Store {
	t.Helper()
	return kubeStoreAt(t, env.Config, namespace, lease)
}

func kubeStoreAt(t *testing.T, cfg *rest.Config, namespace, lease string) *kube.Store {
	t.Helper()
	s, err := kube.New(cfg, namespace, lease, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// candidate is one Elector running in the background, recording its terms
// in a shared checker.
type candidate struct {
	id      string
	e       *election.Elector
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	ended   []error // why each term ended
	endedCh chan error
}

type candidateOpts struct {
	hold   func() time.Duration // how long each term's work lasts; nil: until the term ends
	linger time.Duration        // how long the work goes on after its term ended (within Grace)
	log    *slog.Logger
	tune   func(*election.Config)
}

func startCandidate(t *testing.T, s store.Store, id string, chk *electiontest.Checker, o candidateOpts) *candidate {
	t.Helper()
	c := &candidate{id: id, done: make(chan error, 1), endedCh: make(chan error, 100)}
	log := o.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg := election.Config{
		Store: s, Identity: id,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry, Grace: testGrace,
		Logger: log,
		Lead: func(term *election.Term) {
			end := chk.Begin(id, term.Token())
			if o.hold != nil {
				timer := time.NewTimer(o.hold())
				select {
				case <-term.Done():
				case <-timer.C:
				}
				timer.Stop()
			} else {
				<-term.Done()
			}
			if o.linger > 0 && term.Err() != nil {
				time.Sleep(o.linger) // the work takes this long to stop
			}
			end()
			c.mu.Lock()
			c.ended = append(c.ended, term.Err())
			c.mu.Unlock()
			c.endedCh <- term.Err()
		},
	}
	if o.tune != nil {
		o.tune(&cfg)
	}
	e, err := election.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.e = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- e.Run(ctx) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends the candidate and waits for Run to return.
func (c *candidate) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err, ok := <-c.done:
		if ok && err != nil {
			t.Errorf("%s: Run: %v", c.id, err)
		}
		if ok {
			close(c.done)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: Run did not return 30s after its context ended", c.id)
	}
}

// waitFor waits until cond holds, re-checking whenever ch delivers, and
// fails the test after limit.
func waitFor[T any](t *testing.T, what string, limit time.Duration, ch <-chan T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
	}
}

// waitLeader waits until c leads.
func waitLeader(t *testing.T, c *candidate, limit time.Duration) election.Status {
	t.Helper()
	ch, cancel := c.e.Subscribe()
	defer cancel()
	waitFor(t, c.id+" to lead", limit, ch, func() bool { return c.e.Status().IsLeader })
	return c.e.Status()
}

// assertClean fails the test for every violation the checker saw.
func assertClean(t *testing.T, chk *electiontest.Checker) {
	t.Helper()
	for _, v := range chk.Violations() {
		t.Errorf("violation: %s", v)
	}
}

// countingStore counts the calls made through it, and can be made to fail
// every write, as a process cut off from its store would.
type countingStore struct {
	store.Store
	gets, creates, updates, watches atomic.Int64
	wrote                           atomic.Int64 // successful writes
	failWrites                      atomic.Bool
	calls                           chan struct{}
	gate                            *barrier // if set, creates wait for each other
}

func newCounting(s store.Store) *countingStore {
	return &countingStore{Store: s, calls: make(chan struct{}, 1)}
}

func (c *countingStore) ping() {
	select {
	case c.calls <- struct{}{}:
	default:
	}
}

func (c *countingStore) Get(ctx context.Context) (store.Record, error) {
	c.gets.Add(1)
	defer c.ping()
	return c.Store.Get(ctx)
}

func (c *countingStore) Create(ctx context.Context, r store.Record) (store.Record, error) {
	if c.gate != nil {
		c.gate.wait()
	}
	var got store.Record
	err := fmt.Errorf("create: injected failure")
	if !c.failWrites.Load() {
		got, err = c.Store.Create(ctx, r)
	}
	if err == nil {
		c.wrote.Add(1)
	}
	c.creates.Add(1)
	if c.gate != nil {
		c.gate.done <- struct{}{}
	}
	c.ping()
	return got, err
}

func (c *countingStore) Update(ctx context.Context, r store.Record) (store.Record, error) {
	defer c.ping()
	defer c.updates.Add(1)
	if c.failWrites.Load() {
		return store.Record{}, fmt.Errorf("update: injected failure")
	}
	got, err := c.Store.Update(ctx, r)
	if err == nil {
		c.wrote.Add(1)
	}
	return got, err
}

func (c *countingStore) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	ch, err := c.Store.Watch(ctx, after)
	if err == nil {
		c.watches.Add(1)
	}
	c.ping()
	return ch, err
}

// logCapture is a slog handler that keeps messages and announces them.
type logCapture struct {
	slog.Handler
	mu    *sync.Mutex
	lines *[]string
	ch    chan struct{}
}

func newLogCapture(t *testing.T) (*slog.Logger, *logCapture) {
	lc := &logCapture{Handler: slog.NewTextHandler(t.Output(), nil), mu: &sync.Mutex{}, lines: new([]string), ch: make(chan struct{}, 1)}
	return slog.New(lc), lc
}

func (l *logCapture) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	*l.lines = append(*l.lines, r.Message)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
	return l.Handler.Handle(ctx, r)
}

func (l *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCapture{Handler: l.Handler.WithAttrs(as), mu: l.mu, lines: l.lines, ch: l.ch}
}

func (l *logCapture) WithGroup(g string) slog.Handler {
	return &logCapture{Handler: l.Handler.WithGroup(g), mu: l.mu, lines: l.lines, ch: l.ch}
}

func (l *logCapture) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range *l.lines {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

var _ = metav1.GetOptions{}
