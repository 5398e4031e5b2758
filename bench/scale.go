package main

// The scale profile: N elections, each with one candidate in each of three
// worker processes (the way a sharded or multi-tenant component is
// deployed: three replicas, each campaigning in every election), on the
// run's API server. One row per implementation and timing; see scaleRow.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// scaleWorkers is the number of worker processes, so of candidates per
// election.
const scaleWorkers = 3

// scaleSpec is one row of the scale profile.
type scaleSpec struct {
	impl     string        // "incumbent" or "client-go"
	n        int           // elections
	prof     profile       // timings
	interval time.Duration // incumbent's RenewInterval; 0: the retry period
	window   time.Duration // steady-state window
	limit    time.Duration // bound on every wait for leaders
}

// renewEvery is how often a leader of the row renews.
func (s scaleSpec) renewEvery() time.Duration {
	if s.impl == "incumbent" && s.interval > 0 {
		return s.interval
	}
	return s.prof.retry
}

// scaleResult is what one row measured. Durations are -1 when what they
// wait for did not happen within the spec's limit.
type scaleResult struct {
	scaleSpec
	err     error  // the row stopped early (or never ran): the rest is partial
	skipped string // why the row was not run at all

	startup       time.Duration // workers started → all three ready
	allLed        time.Duration // "go" → every election had a leader
	neverLed      int           // elections without a leader within the limit
	electRequests float64       // lease requests from "go" until every election had a leader
	leading       [scaleWorkers]int
	requestsPS    float64 // lease requests per second, steady state
	cpuPerMin     float64 // API server CPU seconds per minute, steady state
	windowEnds    int     // terms that ended during the window
	steady        bool    // the steady state was measured
	crashed       bool    // the kill was measured

	baseRSS, rss [scaleWorkers]int64 // bytes: before any election, at steady state
	conns        [scaleWorkers]int   // established TCP connections to the API server

	victim    int           // the worker killed
	victimLed int           // elections it led then
	reLed     time.Duration // kill → every election had a leader again
	notReLed  int           // elections without a leader within the limit after the kill
	after     [scaleWorkers]int

	overlaps int      // pairs of terms of one election that overlapped in time
	errs     []string // candidates that stopped for good ("err" lines)
	logs     map[string]int
}

// rssPerElection is the mean growth of a worker's RSS per election, in
// bytes, from before any election to the steady state.
func (r *scaleResult) rssPerElection() float64 {
	var sum float64
	for w := range scaleWorkers {
		sum += float64(r.rss[w]-r.baseRSS[w]) / float64(r.n)
	}
	return sum / scaleWorkers
}

// scaleEnv is what every row of a run shares: the API server and a
// kubeconfig for the workers.
type scaleEnv struct {
	admin      *rest.Config
	cs         *kubernetes.Clientset
	kubeconfig string
	apiPort    int
	dir        string
	seq        int
}

func newScaleEnv(admin *rest.Config) (*scaleEnv, error) {
	u, err := url.Parse(admin.Host)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, fmt.Errorf("API server address %q has no port", admin.Host)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "incumbent-bench-scale-")
	if err != nil {
		return nil, err
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(admin, "default", kc); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &scaleEnv{admin: admin, cs: cs, kubeconfig: kc, apiPort: port, dir: dir}, nil
}

func (se *scaleEnv) close() { os.RemoveAll(se.dir) }

// row runs one row. Its failures are the row's (r.err), not the run's: a
// size one implementation cannot cope with on this machine is reported as
// such.
func (se *scaleEnv) row(spec scaleSpec, progress func(string, ...any)) *scaleResult {
	r := &scaleResult{scaleSpec: spec, allLed: -1, reLed: -1, victim: -1}
	r.err = se.measure(r, progress)
	return r
}

func (se *scaleEnv) measure(r *scaleResult, say func(string, ...any)) error {
	se.seq++
	ns := fmt.Sprintf("bench-scale-%d", se.seq)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := se.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	tr := newScaleTracker(r.n)
	var ws []*worker
	defer func() {
		for _, w := range ws {
			w.kill()
		}
		// One request for the row's Leases: with no namespace controller,
		// deleting the namespace would leave them.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := se.cs.CoordinationV1().Leases(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			say("  scale: delete the Leases of %s: %v", ns, err)
		}
	}()

	t0 := time.Now()
	for i := range scaleWorkers {
		w, err := startWorker(workerFlags{impl: r.impl, kubeconfig: se.kubeconfig, namespace: ns, identity: fmt.Sprintf("w%d", i),
			elections: r.n, lease: r.prof.lease, renew: r.prof.renew, retry: r.prof.retry, grace: r.prof.grace, interval: r.interval}, i, tr)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	for i, w := range ws {
		select {
		case rss := <-w.ready:
			r.baseRSS[i] = rss
		case <-w.exited:
			return fmt.Errorf("worker %d exited before it was ready: %v%s", i, w.exitErr, w.stderr.tail())
		case <-time.After(r.limit):
			return fmt.Errorf("worker %d not ready within %v", i, r.limit)
		}
	}
	r.startup = time.Since(t0)

	// Start every election in the three processes at once.
	atStart, err := scrape(se.admin)
	if err != nil {
		return err
	}
	start := time.Now()
	for _, w := range ws {
		if err := w.send("go"); err != nil {
			return err
		}
	}
	ok, err := tr.wait(func() bool { return tr.ledCount == r.n }, start.Add(r.limit))
	if err != nil {
		return err
	}
	tr.mu.Lock()
	r.neverLed = r.n - tr.ledCount
	if ok {
		r.allLed = time.Duration(slices.Max(tr.firstLed) - start.UnixNano())
	}
	setup := time.Duration(max(tr.started-start.UnixNano(), 0)) // 0: not told yet
	var firsts []time.Duration
	for _, at := range tr.firstLed {
		if at != 0 {
			firsts = append(firsts, time.Duration(at-start.UnixNano()))
		}
	}
	tr.mu.Unlock()
	slices.Sort(firsts)
	elected, err := scrape(se.admin)
	if err != nil {
		return err
	}
	r.electRequests = elected.leaseRequests - atStart.leaseRequests
	say("  all elected after %v (%d never; p50 %v, p90 %v; %.0f lease requests; candidates built after %v), workers ready after %v", r.allLed.Round(time.Millisecond), r.neverLed,
		quantile(firsts, .5).Round(time.Millisecond), quantile(firsts, .9).Round(time.Millisecond), r.electRequests, setup.Round(time.Millisecond), r.startup.Round(time.Millisecond))

	// The steady state.
	time.Sleep(2 * r.prof.retry) // let the start-up's requests land first
	before, err := scrape(se.admin)
	if err != nil {
		return err
	}
	winFrom := time.Now()
	time.Sleep(r.window)
	after, err := scrape(se.admin)
	if err != nil {
		return err
	}
	winTo := time.Now()
	r.requestsPS = (after.leaseRequests - before.leaseRequests) / winTo.Sub(winFrom).Seconds()
	r.cpuPerMin = (after.cpuSeconds - before.cpuSeconds) / winTo.Sub(winFrom).Minutes()
	for i, w := range ws {
		s, err := readProc(w.pid())
		if err != nil {
			return err
		}
		r.rss[i] = s.rssKB * 1024
		if r.conns[i], err = apiConns(w.pid(), se.apiPort); err != nil {
			return err
		}
	}
	tr.mu.Lock()
	r.windowEnds = tr.endedBetween(winFrom, winTo)
	r.leading = tr.leadingCounts()
	tr.mu.Unlock()
	if err := tr.failure(); err != nil {
		return err
	}
	logs := map[string]int{}
	for _, w := range ws {
		if err := w.stats(logs); err != nil {
			return err
		}
	}
	r.steady = true
	say("  steady: %.1f lease requests/s, API server %.2f CPU s/min, leaders per worker %v", r.requestsPS, r.cpuPerMin, r.leading)

	// Crash the worker that leads the most elections.
	r.victim = 0
	for i := range scaleWorkers {
		if r.leading[i] > r.leading[r.victim] {
			r.victim = i
		}
	}
	r.victimLed = r.leading[r.victim]
	kill := time.Now()
	tr.killed(r.victim, kill)
	ws[r.victim].kill()
	ok, err = tr.wait(func() bool { return tr.unled == 0 }, kill.Add(r.limit))
	if err != nil {
		return err
	}
	tr.mu.Lock()
	if ok {
		r.reLed = tr.reElected()
	}
	r.notReLed = tr.unled
	r.after = tr.leadingCounts()
	tr.mu.Unlock()
	r.crashed = true
	say("  after killing worker %d (leading %d): all led again after %v (%d not)", r.victim, r.victimLed, r.reLed.Round(time.Millisecond), r.notReLed)
	for i, w := range ws {
		if i == r.victim {
			continue
		}
		// Counts are cumulative: the survivors' replace theirs from before.
		if err := w.stats(nil); err != nil {
			return err
		}
	}
	for _, w := range ws {
		for k, v := range w.lastStats {
			logs[k] += v
		}
	}
	r.logs = logs

	tr.mu.Lock()
	r.overlaps = tr.overlaps()
	r.errs = tr.errs
	tr.mu.Unlock()
	return tr.failure()
}

// scaleTracker follows the terms that the workers of one row report.
type scaleTracker struct {
	mu       sync.Mutex
	changed  chan struct{}
	leading  []uint8 // per election, the workers whose last report is "led"
	firstLed []int64 // per election, the first term's start (Unix nanos), 0 if none
	ledCount int     // elections led at least once
	dead     uint8   // workers killed
	killAt   int64
	needed   []bool  // per election: it had no surviving leader at the kill
	reLedAt  []int64 // per needed election, the first survivor's term start after the kill
	unled    int     // elections without a leader among the surviving workers
	terms    [][]span
	ends     []int64 // every term end
	errs     []string
	failed   error
	started  int64 // when the last worker had started every candidate
}

// span is one term of a worker in an election; to is 0 while it lasts.
type span struct {
	w        int
	from, to int64
}

func newScaleTracker(n int) *scaleTracker {
	return &scaleTracker{changed: make(chan struct{}, 1), leading: make([]uint8, n), firstLed: make([]int64, n),
		terms: make([][]span, n), unled: n}
}

func (t *scaleTracker) notify() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *scaleTracker) led(w, e int, at int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e < 0 || e >= len(t.leading) {
		t.fail(fmt.Errorf("worker %d reported election %d of %d", w, e, len(t.leading)))
		return
	}
	if t.leading[e]&^t.dead == 0 && t.dead&(1<<w) == 0 {
		t.unled--
	}
	t.leading[e] |= 1 << w
	if t.firstLed[e] == 0 {
		t.firstLed[e] = at
		t.ledCount++
	}
	if t.killAt != 0 && t.needed[e] && t.reLedAt[e] == 0 && t.dead&(1<<w) == 0 {
		t.reLedAt[e] = at
	}
	t.terms[e] = append(t.terms[e], span{w: w, from: at})
	t.notify()
}

func (t *scaleTracker) lost(w, e int, at int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e < 0 || e >= len(t.leading) || t.leading[e]&(1<<w) == 0 {
		t.fail(fmt.Errorf("worker %d reported the end of a term in election %d that it had not reported", w, e))
		return
	}
	t.leading[e] &^= 1 << w
	if t.leading[e]&^t.dead == 0 && t.dead&(1<<w) == 0 {
		t.unled++
	}
	for i := len(t.terms[e]) - 1; i >= 0; i-- {
		if s := &t.terms[e][i]; s.w == w && s.to == 0 {
			s.to = at
			break
		}
	}
	t.ends = append(t.ends, at)
	t.notify()
}

// killed marks worker w dead from at: its terms end then.
func (t *scaleTracker) killed(w int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead |= 1 << w
	t.killAt = at.UnixNano()
	t.needed = make([]bool, len(t.leading))
	t.reLedAt = make([]int64, len(t.leading))
	t.unled = 0
	for e, l := range t.leading {
		if l&^t.dead == 0 {
			t.needed[e] = true
			t.unled++
		}
	}
	t.notify()
}

// reElected is how long after the kill the last election that needed a
// new leader got one. Called with mu, once unled is 0.
func (t *scaleTracker) reElected() time.Duration {
	var last int64
	for e, need := range t.needed {
		if need && t.reLedAt[e] != 0 {
			last = max(last, t.reLedAt[e]-t.killAt)
		}
	}
	return time.Duration(last)
}

// leadingCounts is how many elections each worker leads, by its reports.
// Called with mu.
func (t *scaleTracker) leadingCounts() (n [scaleWorkers]int) {
	for _, l := range t.leading {
		for w := range scaleWorkers {
			if l&^t.dead&(1<<w) != 0 {
				n[w]++
			}
		}
	}
	return n
}

// endedBetween counts the terms that ended in [from, to]. Called with mu.
func (t *scaleTracker) endedBetween(from, to time.Time) int {
	n := 0
	for _, at := range t.ends {
		if at >= from.UnixNano() && at <= to.UnixNano() {
			n++
		}
	}
	return n
}

// overlaps counts the pairs of terms of one election that overlapped, by
// the workers' clocks (one machine's): a killed worker's terms end at the
// kill, and a term that lasts, never. Called with mu.
func (t *scaleTracker) overlaps() int {
	n := 0
	for _, terms := range t.terms {
		ends := make([]int64, len(terms))
		for i, s := range terms {
			switch {
			case s.to != 0:
				ends[i] = s.to
			case t.dead&(1<<s.w) != 0 && s.from < t.killAt:
				ends[i] = t.killAt
			default:
				ends[i] = 1<<63 - 1
			}
		}
		for i := range terms {
			for j := i + 1; j < len(terms); j++ {
				if terms[i].from < ends[j] && terms[j].from < ends[i] {
					n++
				}
			}
		}
	}
	return n
}

func (t *scaleTracker) fail(err error) {
	if t.failed == nil {
		t.failed = err
	}
	t.notify()
}

func (t *scaleTracker) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// wait waits until cond (called with mu) holds, the deadline passes
// (false) or the row fails.
func (t *scaleTracker) wait(cond func() bool, deadline time.Time) (bool, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok, err := cond(), t.failed
		t.mu.Unlock()
		if err != nil || ok {
			return ok, err
		}
		select {
		case <-t.changed:
		case <-timer.C:
			return false, nil
		}
	}
}

// worker is one worker process of a row, as the parent sees it.
type worker struct {
	idx       int
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	stderr    *tailBuffer
	ready     chan int64
	statsEnd  chan map[string]int
	lastStats map[string]int // the last answer to stats
	exited    chan struct{}
	exitErr   error
	dying     atomic.Bool // killed by the parent
}

// startWorker starts the bench binary as a worker with f.
func startWorker(f workerFlags, idx int, tr *scaleTracker) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, f.args()...)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	w := &worker{idx: idx, cmd: cmd, stderr: &tailBuffer{max: 4096}, ready: make(chan int64, 1),
		statsEnd: make(chan map[string]int, 1), exited: make(chan struct{})}
	cmd.Stderr = w.stderr
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", idx, err)
	}
	remember(w)
	go w.read(stdout, tr)
	return w, nil
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

// read follows the worker's reports until it exits.
func (w *worker) read(stdout io.Reader, tr *scaleTracker) {
	var logs map[string]int
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		f := strings.SplitN(rest, " ", 3)
		num := func(i int) int64 {
			if i >= len(f) {
				return -1
			}
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
		switch kind {
		case "ready":
			w.ready <- num(0)
		case "started":
			tr.mu.Lock()
			tr.started = max(tr.started, num(0))
			tr.mu.Unlock()
		case "led":
			tr.led(w.idx, int(num(0)), num(1))
		case "lost":
			tr.lost(w.idx, int(num(0)), num(1))
		case "err":
			tr.mu.Lock()
			tr.errs = append(tr.errs, fmt.Sprintf("worker %d: election %s", w.idx, rest))
			tr.mu.Unlock()
		case "log":
			if logs == nil {
				logs = map[string]int{}
			}
			if n, msg, ok := strings.Cut(rest, " "); ok {
				v, _ := strconv.Atoi(n)
				logs[msg] += v
			}
		case "stats-end":
			if logs == nil {
				logs = map[string]int{}
			}
			w.statsEnd <- logs
			logs = nil
		default:
			tr.mu.Lock()
			tr.fail(fmt.Errorf("worker %d said %q", w.idx, sc.Text()))
			tr.mu.Unlock()
		}
	}
	w.exitErr = w.cmd.Wait()
	forget(w)
	if !w.dying.Load() {
		tr.mu.Lock()
		tr.fail(fmt.Errorf("worker %d exited: %v%s", w.idx, w.exitErr, w.stderr.tail()))
		tr.mu.Unlock()
	}
	close(w.exited)
}

func (w *worker) send(line string) error {
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		return fmt.Errorf("worker %d: %w", w.idx, err)
	}
	return nil
}

// stats asks the worker for its log counts, keeps them in lastStats and, if
// into is not nil, adds them to it.
func (w *worker) stats(into map[string]int) error {
	if err := w.send("stats"); err != nil {
		return err
	}
	select {
	case m := <-w.statsEnd:
		w.lastStats = m
		for k, v := range m {
			if into != nil {
				into[k] += v
			}
		}
		return nil
	case <-w.exited:
		return fmt.Errorf("worker %d exited: %v%s", w.idx, w.exitErr, w.stderr.tail())
	case <-time.After(time.Minute):
		return fmt.Errorf("worker %d did not answer stats within a minute", w.idx)
	}
}

// kill kills the worker with SIGKILL and waits for it to be gone.
func (w *worker) kill() {
	if w.dying.Swap(true) {
		<-w.exited
		return
	}
	w.cmd.Process.Kill()
	<-w.exited
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

// tail is the end of the worker's stderr, to follow an error message.
func (b *tailBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := strings.TrimSpace(string(b.buf)); s != "" {
		return "; its stderr ends: " + s
	}
	return ""
}

// The live workers of the run, killed by killWorkers when the run is
// interrupted.
var live struct {
	mu sync.Mutex
	ws map[*worker]struct{}
}

// spawner starts every worker from one goroutine locked to its OS thread,
// which lives as long as the process: on Linux the workers' parent-death
// signal fires when the thread that started them ends, not the process.
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for f := range ch {
			f()
		}
	}()
	return ch
})

// spawn starts cmd, with a parent-death signal where the OS has one, and
// records it among the live workers.
func spawn(cmd *exec.Cmd) error {
	setDeathSignal(cmd)
	errc := make(chan error, 1)
	spawner() <- func() { errc <- cmd.Start() }
	return <-errc
}

func remember(w *worker) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.ws == nil {
		live.ws = map[*worker]struct{}{}
	}
	live.ws[w] = struct{}{}
}

func forget(w *worker) {
	live.mu.Lock()
	defer live.mu.Unlock()
	delete(live.ws, w)
}

// killWorkers kills every live worker, when the run is interrupted.
func killWorkers() {
	live.mu.Lock()
	defer live.mu.Unlock()
	for w := range live.ws {
		w.dying.Store(true)
		w.cmd.Process.Kill()
	}
}

// apiConns counts the established TCP connections of process pid whose
// remote port is port: its socket descriptors matched by inode against
// /proc/PID/net/tcp and tcp6.
func apiConns(pid, port int) (int, error) {
	inodes := map[string]bool{}
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if errors.Is(err, os.ErrNotExist) && file == "tcp6" {
			continue
		}
		if err != nil {
			return 0, err
		}
		lines := strings.Split(string(data), "\n")
		for _, line := range lines[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "01" { // 01: ESTABLISHED
				continue
			}
			_, p, ok := strings.Cut(f[2], ":")
			if v, err := strconv.ParseUint(p, 16, 16); ok && err == nil && int(v) == port {
				inodes[f[9]] = true
			}
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if in, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(in, "]")] {
			n++
		}
	}
	return n, nil
}

// memAvailable is the kernel's estimate of the memory available for new
// processes, in bytes (0 if unknown).
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
