package main

// The scale profile's worker: one of the three processes, each holding one
// candidate of every election. The bench binary runs itself as a worker
// when workerEnv is set (see startWorker), so no extra build step is
// needed.
//
// The worker talks to the parent in lines. On stdin it reads
//
//	go      start every election
//	stats   report the warnings and errors logged so far
//
// and it exits when stdin ends (the parent is gone). On stdout it writes
//
//	ready RSS              its client is built, no election started yet (RSS in bytes)
//	started NANOS          every election's candidate is built and running
//	led E NANOS            it started leading election E (0-based) at NANOS (Unix)
//	lost E NANOS REASON    that term ended
//	err E MESSAGE          the candidate of election E stopped for good
//	log N LEVEL MESSAGE    N records of that level and message, since it started
//	stats-end              the end of the answer to stats

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/kube"
)

// workerEnv, set in a process's environment, makes the bench binary (or
// the bench's test binary) a scale worker.
const workerEnv = "INCUMBENT_BENCH_WORKER"

// leaseName is the Lease of election i of the scale profile.
func leaseName(i int) string { return fmt.Sprintf("e-%d", i) }

type workerFlags struct {
	impl, kubeconfig, namespace, identity string
	elections                             int
	lease, renew, retry, grace, interval  time.Duration
}

// args renders f as the worker's command line.
func (f workerFlags) args() []string {
	return []string{"-impl", f.impl, "-kubeconfig", f.kubeconfig, "-namespace", f.namespace, "-identity", f.identity,
		"-elections", strconv.Itoa(f.elections), "-lease", f.lease.String(), "-renew", f.renew.String(),
		"-retry", f.retry.String(), "-grace", f.grace.String(), "-renew-interval", f.interval.String()}
}

// workerMain runs a worker and returns its exit code.
func workerMain(args []string) int {
	var f workerFlags
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	fs.StringVar(&f.impl, "impl", "", "incumbent or client-go")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "the API server's kubeconfig")
	fs.StringVar(&f.namespace, "namespace", "", "the namespace of the Leases")
	fs.StringVar(&f.identity, "identity", "", "this candidate's identity in every election")
	fs.IntVar(&f.elections, "elections", 0, "number of elections")
	fs.DurationVar(&f.lease, "lease", 0, "lease duration")
	fs.DurationVar(&f.renew, "renew", 0, "renew deadline")
	fs.DurationVar(&f.retry, "retry", 0, "retry period")
	fs.DurationVar(&f.grace, "grace", 0, "grace (incumbent)")
	fs.DurationVar(&f.interval, "renew-interval", 0, "renew interval (incumbent; 0: the retry period)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := runWorker(f, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		return 1
	}
	return 0
}

// reporter writes the worker's lines from many goroutines; it flushes
// whenever nobody is waiting to write, so a burst costs few writes. It lasts
// as long as the process.
type reporter struct {
	lines chan string
}

func newReporter(w io.Writer) *reporter {
	r := &reporter{lines: make(chan string, 4096)}
	go func() {
		bw := bufio.NewWriterSize(w, 64<<10)
		for line := range r.lines {
			bw.WriteString(line)
			bw.WriteByte('\n')
			if len(r.lines) == 0 {
				if bw.Flush() != nil {
					os.Exit(1) // the parent is gone
				}
			}
		}
	}()
	return r
}

func (r *reporter) say(format string, args ...any) { r.lines <- fmt.Sprintf(format, args...) }

// logCounter counts the warnings and errors logged by the candidates (their
// loggers otherwise discard everything), by level and message.
type logCounter struct {
	mu     sync.Mutex
	counts map[[2]string]int
}

var (
	digits  = regexp.MustCompile(`\b[0-9]+\b`)
	failure = regexp.MustCompile(`(?i)fail|error|unable|cannot`)
)

// kvErr is ": ERR" for the "err" value among logr's key-value pairs.
func kvErr(kv []any) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "err" {
			return fmt.Sprintf(": %v", kv[i+1])
		}
	}
	return ""
}

func (c *logCounter) add(level, msg string) {
	msg = digits.ReplaceAllString(strings.Join(strings.Fields(msg), " "), "N") // one key for every election
	c.mu.Lock()
	c.counts[[2]string{level, msg}]++
	c.mu.Unlock()
}

func (c *logCounter) report(r *reporter) {
	c.mu.Lock()
	keys := make([][2]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		r.say("log %d %s %s", c.counts[k], k[0], k[1])
	}
	c.mu.Unlock()
	r.say("stats-end")
}

// slogCounter is a slog.Handler that counts warnings and errors and drops
// every record.
type slogCounter struct{ c *logCounter }

func (h slogCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h slogCounter) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	h.c.add(strings.ToLower(r.Level.String()), msg)
	return nil
}
func (h slogCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slogCounter) WithGroup(string) slog.Handler      { return h }

// klogCounter is a logr.LogSink for klog (client-go's logging) that counts
// errors and drops everything else.
type klogCounter struct{ c *logCounter }

func (klogCounter) Init(logr.RuntimeInfo)  {}
func (klogCounter) Enabled(level int) bool { return level == 0 }
func (s klogCounter) Info(level int, msg string, kv ...any) {
	if level == 0 && failure.MatchString(msg) {
		s.c.add("info", msg+kvErr(kv))
	}
}
func (s klogCounter) Error(err error, msg string, _ ...any) { s.c.add("error", msg+errSuffix(err)) }
func (s klogCounter) WithValues(...any) logr.LogSink        { return s }
func (s klogCounter) WithName(string) logr.LogSink          { return s }
func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func runWorker(f workerFlags, stdin io.Reader, stdout io.Writer) error {
	if f.elections <= 0 || f.identity == "" || f.namespace == "" {
		return fmt.Errorf("-elections, -identity and -namespace are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return err
	}
	counter := &logCounter{counts: map[[2]string]int{}}
	klog.SetLogger(logr.New(klogCounter{counter}))
	rep := newReporter(stdout)

	// Build what every election shares, then say ready with the RSS before
	// any election exists.
	var start func(ctx context.Context, i int) error
	switch f.impl {
	case "incumbent":
		client, err := kube.NewClient(cfg, kube.ClientOptions{UserAgent: "bench-incumbent"})
		if err != nil {
			return err
		}
		start = func(ctx context.Context, i int) error {
			return startIncumbent(ctx, client, f, i, counter, rep)
		}
	case "client-go":
		start = func(ctx context.Context, i int) error {
			return startClientGo(ctx, cfg, f, i, rep)
		}
	default:
		return fmt.Errorf("unknown -impl %q", f.impl)
	}
	rss, err := selfRSS()
	if err != nil {
		return err
	}
	rep.say("ready %d", rss)

	// Leave at once when stdin ends (the parent is done with us, or gone):
	// the leases are not released, as after a crash; the parent deletes them.
	ctx := context.Background()
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "go":
			for i := range f.elections {
				if err := start(ctx, i); err != nil {
					return fmt.Errorf("election %d: %w", i, err)
				}
			}
			rep.say("started %d", time.Now().UnixNano())
		case "stats":
			counter.report(rep)
		}
	}
	return nil
}

// startIncumbent runs this worker's candidate of election i on the shared
// client.
func startIncumbent(ctx context.Context, client *kube.Client, f workerFlags, i int, counter *logCounter, rep *reporter) error {
	st, err := client.Store(f.namespace, leaseName(i))
	if err != nil {
		return err
	}
	e, err := election.New(election.Config{
		Store: st, Identity: f.identity,
		LeaseDuration: f.lease, RenewDeadline: f.renew, RetryPeriod: f.retry, RenewInterval: f.interval, Grace: f.grace,
		Logger: slog.New(slogCounter{counter}),
		Lead: func(t *election.Term) {
			rep.say("led %d %d", i, time.Now().UnixNano())
			<-t.Done()
			rep.say("lost %d %d %v", i, time.Now().UnixNano(), t.Err())
		},
	})
	if err != nil {
		return err
	}
	go func() {
		if err := e.Run(ctx); err != nil {
			rep.say("err %d %v", i, err)
		}
	}()
	return nil
}

// startClientGo runs this worker's client-go candidate of election i, with
// a clientset of its own as client-go's users have one per elector (the
// transport cache shares the connection among identical configurations).
// client-go's Run is one-shot: a candidate that lost campaigns again with
// a new LeaderElector, as a restarted process would.
func startClientGo(ctx context.Context, cfg *rest.Config, f workerFlags, i int, rep *reporter) error {
	c := rest.CopyConfig(cfg)
	c.UserAgent = "bench-client-go"
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return err
	}
	newElector := func(ended chan struct{}) (*leaderelection.LeaderElector, error) {
		return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: f.namespace, Name: leaseName(i)},
				Client:     cs.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: f.identity},
			},
			LeaseDuration: f.lease, RenewDeadline: f.renew, RetryPeriod: f.retry,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				// The work of a term lasts until this context ends, which is
				// after the renewals gave up and the release (if any) was sent.
				OnStartedLeading: func(ctx context.Context) {
					rep.say("led %d %d", i, time.Now().UnixNano())
					<-ctx.Done()
					rep.say("lost %d %d stopped leading", i, time.Now().UnixNano())
					close(ended)
				},
				OnStoppedLeading: func() {},
			},
		})
	}
	if _, err := newElector(nil); err != nil {
		return err
	}
	go func() {
		for {
			ended := make(chan struct{})
			le, err := newElector(ended)
			if err != nil {
				rep.say("err %d %v", i, err)
				return
			}
			le.Run(ctx)
			if ctx.Err() != nil {
				return
			}
			// Run returned with ctx alive: it had acquired, and has started
			// OnStartedLeading (in a goroutine of its own). Let that report
			// the term's end before the next elector can report a new one.
			<-ended
		}
	}()
	return nil
}

// selfRSS is this process's resident set, in bytes.
func selfRSS() (int64, error) {
	s, err := readProc(os.Getpid())
	return s.rssKB * 1024, err
}
