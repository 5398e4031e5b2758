package chaos_test

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/test/chaos/checker"
)

// seed returns the -chaos.seed flag, or a new random seed.
func seed(t *testing.T) uint64 {
	if *flagSeed != 0 {
		return uint64(*flagSeed)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b[:]) >> 1 // fits the int64 flag, to replay it
}

// verdict lists every way a report breaks the promises, empty if none:
// no overlapping terms where the timing inequality holds (every fault but
// SIGSTOP: a paused process breaks it by design, and only fencing can
// protect the resource then), no stale write accepted, no token out of
// order, no protocol error, leadership back after every fault, and pauses
// that leave a trace (otherwise the SIGSTOP fault tested nothing).
func verdict(r checker.Report) []string {
	var v []string
	for _, k := range r.Kinds {
		if k.Kind != faultStop && k.Overlaps > 0 {
			v = append(v, fmt.Sprintf("%d overlapping term(s) during %q", k.Overlaps, k.Kind))
		}
	}
	if r.Total.StaleAccepted > 0 {
		v = append(v, fmt.Sprintf("%d stale write(s) accepted by the resource", r.Total.StaleAccepted))
	}
	if r.Total.StaleRejected != r.Total.StaleAttempted {
		v = append(v, fmt.Sprintf("only %d of %d stale writes rejected", r.Total.StaleRejected, r.Total.StaleAttempted))
	}
	if r.Total.OutOfOrder > 0 {
		v = append(v, fmt.Sprintf("%d token(s) out of order", r.Total.OutOfOrder))
	}
	if len(r.Protocol) > 0 {
		v = append(v, fmt.Sprintf("%d protocol error(s): %s", len(r.Protocol), strings.Join(r.Protocol, "; ")))
	}
	if r.Unsettled > 0 {
		v = append(v, fmt.Sprintf("leadership did not come back after %d fault(s)", r.Unsettled))
	}
	if stop := r.Kind(faultStop); stop.Faults >= 3 && stop.StaleAttempted+stop.Overlaps == 0 {
		v = append(v, fmt.Sprintf("%d pauses left no trace: no stale write attempted, no overlap", stop.Faults))
	}
	return v
}

// TestChaos injects every kind of fault, in random order with random
// timing, into an election of several `incumbent run -- child` sidecars for
// -chaos.duration, and holds the checker's report to the verdict.
func TestChaos(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d (replay the order with -chaos.seed=%d), %d candidates, duration %v", s, s, *flagCandidates, *flagDuration)
	kinds, err := selectedFaults(*flagFaults)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "chaos", *flagCandidates, true, kinds, s)
	began := time.Now()
	if err := h.waitSettled(-1, began); err != nil {
		t.Fatalf("no first leader: %v", err)
	}
	t.Logf("first leader after %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	deadline := began.Add(*flagDuration)
	var deck []string
	rounds := 0
	for time.Now().Before(deadline) {
		if len(deck) == 0 {
			deck = append([]string(nil), kinds...)
			h.rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
			rounds++
		}
		kind := deck[0]
		deck = deck[1:]
		pause(h.between(0, time.Second))
		if err := h.inject(kind); err != nil {
			t.Errorf("fault %d (%s): %v", h.faults(), kind, err)
			break
		}
	}
	ran := time.Since(began)
	h.shutdown()

	r := h.check.Report()
	t.Logf("%d faults in %v (%d rounds of every kind in random order)\n%s", r.Total.Faults, ran.Round(time.Second), rounds, r.Markdown())
	if *flagReport {
		path := filepath.Join("results", "latest.md")
		if err := writeReport(path, r, s, ran); err != nil {
			t.Error(err)
		} else {
			t.Logf("report written to %s", path)
		}
	}
	for _, kind := range kinds {
		if r.Kind(kind).Faults == 0 {
			t.Errorf("no %q fault was injected: the run was too short to test every kind", kind)
		}
	}
	for _, v := range verdict(r) {
		t.Error(v)
	}
}

// TestCheckerCatchesUnfencedPause is the negative control: with fencing off
// in the resource, a paused leader resumed workload first writes after its
// successor began. The checker must see the overlaps and the accepted stale
// writes, and the verdict that passes TestChaos must fail this run.
func TestCheckerCatchesUnfencedPause(t *testing.T) {
	s := seed(t)
	h := newHarness(t, "unfenced", 3, false, []string{faultStop}, s)
	if err := h.waitSettled(-1, time.Now()); err != nil {
		t.Fatalf("no first leader: %v", err)
	}
	for range 3 {
		l, err := h.currentLeader()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.stop(l, resumeWorkloadFirst); err != nil {
			t.Fatal(err)
		}
	}
	h.shutdown()

	r := h.check.Report()
	t.Logf("negative control (fencing off):\n%s", r.Markdown())
	stop := r.Kind(faultStop)
	if stop.Faults != 3 {
		t.Fatalf("%d pauses recorded, want 3", stop.Faults)
	}
	if stop.Overlaps == 0 {
		t.Error("the checker found no overlapping terms after three pauses of the leader")
	}
	if stop.StaleAccepted == 0 {
		t.Error("the checker counted no stale write accepted after three pauses of the leader, with fencing off")
	}
	v := verdict(r)
	if len(v) == 0 {
		t.Fatal("the verdict passed a run whose resource accepted stale writes")
	}
	if !strings.Contains(strings.Join(v, "\n"), "stale write(s) accepted") {
		t.Errorf("the verdict failed the run, but not for its accepted stale writes: %q", v)
	}
	t.Logf("the verdict fails this run, as it must: %q", v)
}

// faults counts the faults injected so far.
func (h *harness) faults() int { return h.check.Report().Total.Faults }

// writeReport writes the report of a run, with what is needed to
// reproduce it, to path.
func writeReport(path string, r checker.Report, seed uint64, ran time.Duration) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the chaos report: %w", err)
	}
	var b strings.Builder
	b.WriteString("# Fault injection: latest run\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- faults injected for %v (-chaos.duration=%v), seed %d, %d candidates\n", ran.Round(time.Second), *flagDuration, seed, *flagCandidates)
	fmt.Fprintf(&b, "- timings: lease %v, renew deadline %v, retry period %v, grace %v\n", leaseDuration, renewDeadline, retryPeriod, grace)
	fmt.Fprintf(&b, "- %s %s/%s, %d CPUs, race detector %v\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), raceEnabled)
	fmt.Fprintf(&b, "- command: `go test -race -timeout 45m ./test/chaos/ -run TestChaos -chaos.duration=%v -chaos.seed=%d -chaos.report`\n\n", *flagDuration, seed)
	b.WriteString("Overlapping terms are expected only under SIGSTOP: a paused leader cannot know that it was deposed, and only\n")
	b.WriteString("fencing protects the resource then, which is why every stale write must be rejected. Unavailability runs from\n")
	b.WriteString("the injection to the first term that began after it (0 when the leader kept its term).\n\n")
	b.WriteString(r.Markdown())
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write the chaos report: %w", err)
	}
	return nil
}
