package fence_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/internal/fence"
)

// TestMeasureHandOverLagAndWriteLatency measures, on the real API server,
// and reports (never asserts) two figures of the fence: the lag from a
// hand-over's Lease write to the first refused write of the old holder,
// which writes without pause meanwhile, and the latency the policy adds to
// a write. The old holder's writes accepted in that lag are counted: the
// window docs/fencing.md describes. That every hand-over ends in refusals
// is asserted.
func TestMeasureHandOverLagAndWriteLatency(t *testing.T) {
	w := newWorld(t, "fence-measure")
	a, b := w.newPod("db-0", fencedSA), w.newPod("db-1", fencedSA)
	other := w.newPod("other-0", otherSA)
	w.hold(a, true)

	const writes = 300
	// One Update per write, each from the object the last one returned.
	latency := func(p *pod, name string) []time.Duration {
		must(t, p.write(w, name))
		cms := p.cs.CoreV1().ConfigMaps(w.ns)
		cm, err := cms.Get(w.ctx, name, metav1.GetOptions{})
		must(t, err)
		var d []time.Duration
		for i := range writes {
			cm.Data = map[string]string{"i": strconv.Itoa(i)}
			began := time.Now()
			cm, err = cms.Update(w.ctx, cm, metav1.UpdateOptions{})
			d = append(d, time.Since(began))
			must(t, err)
		}
		return d
	}
	// Interleaved, so that the machine's load falls on both alike.
	var holderBefore, otherBefore []time.Duration
	for range 3 {
		holderBefore = append(holderBefore, latency(a, "a")...)
		otherBefore = append(otherBefore, latency(other, "o")...)
	}
	w.install(fence.Options{})
	var holderWith, otherWith []time.Duration
	for range 3 {
		holderWith = append(holderWith, latency(a, "a")...)
		otherWith = append(otherWith, latency(other, "o")...)
	}
	report := func(what string, d []time.Duration) {
		t.Logf("update latency, %s: p50 %v, p99 %v (%d writes)", what, pct(d, 50), pct(d, 99), len(d))
	}
	report("the candidates' service account, no policy", holderBefore)
	report("the candidates' service account, the policy admitting the holder", holderWith)
	report("another service account, no policy", otherBefore)
	report("another service account, the policy installed (matchConditions skip it)", otherWith)

	const handOvers = 40
	var lags []time.Duration
	var slipped []int
	from, to := a, b
	for i := range handOvers {
		if _, err := w.until(func() error { return from.write(w, "state") }, accepted); err != nil {
			t.Fatalf("%s holding: %v", from.name, err)
		}
		sent := time.Now()
		w.hold(to, true)
		n, err := w.until(func() error { return from.write(w, "state") }, isFenced)
		if err != nil {
			l := w.lease()
			t.Fatalf("hand-over %d, from %s to %s: %s's writes: %v (the Lease: holder %s, transitions %d, annotations %v, resourceVersion %s)",
				i+1, from.name, to.name, from.name, err, *l.Spec.HolderIdentity, *l.Spec.LeaseTransitions, l.Annotations, l.ResourceVersion)
		}
		lags = append(lags, time.Since(sent))
		slipped = append(slipped, n-1)
		from, to = to, from
	}
	total := 0
	for _, s := range slipped {
		total += s
	}
	t.Logf("hand-over to the old holder's first refused write (from the start of the hand-over's Lease read and update to the refusal's answer): p50 %v, max %v over %d hand-overs; "+
		"old holder's writes accepted after its Lease update returned: %d in all, at most %d in one hand-over",
		pct(lags, 50), pct(lags, 100), handOvers, total, slices.Max(slipped))
}

// pct returns the p-th percentile of d (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(10 * time.Microsecond)
}
