package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

type series struct {
	impl, profile string
	samples       []time.Duration
}

type costRow struct {
	impl, profile string
	apiCostResult
}

type scaleRow struct {
	impl string
	scaleResult
}

type results struct {
	started   time.Time
	took      time.Duration
	graceful  []series
	crash     []series
	cost      []costRow
	scale     []scaleRow
	binMiB    float64
	footprint []footprintResult
}

// quantile returns the q-quantile (nearest rank) of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# incumbent vs client-go leaderelection\n\n")
	fmt.Fprintf(&b, "Run %s, %v, on %d CPUs, %s; one real kube-apiserver v1.37.2 + etcd v3.6.16 on loopback; 3 candidates per election; client-go v0.37.2 with ReleaseOnCancel.\n\n",
		r.started.UTC().Format(time.RFC3339), r.took.Round(time.Second), runtime.NumCPU(), runtime.Version())
	if len(r.graceful) > 0 {
		fmt.Fprintf(&b, "## Graceful hand-over\n\nLeader's context cancelled → next leader's term started.\n\n")
		fmt.Fprintf(&b, "| profile | implementation | samples | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n")
		for _, s := range r.graceful {
			x := slices.Sorted(slices.Values(s.samples))
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", s.profile, s.impl, len(x),
				ms(quantile(x, .5)), ms(quantile(x, .9)), ms(quantile(x, .99)), ms(x[len(x)-1]))
		}
		fmt.Fprintf(&b, "\n![hand-over latency](CHART)\n\n")
	}
	if len(r.crash) > 0 {
		fmt.Fprintf(&b, "## Crash take-over\n\nLeader's connection to the API server cut (it cannot release) → next leader's term started, minus leaseDuration. Negative: the follower had last seen a renewal up to one retry period before the cut.\n\n")
		fmt.Fprintf(&b, "| profile | implementation | samples | p50 | p99 | max |\n|---|---|---|---|---|---|\n")
		for _, s := range r.crash {
			x := slices.Sorted(slices.Values(s.samples))
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", s.profile, s.impl, len(x),
				ms(quantile(x, .5)), ms(quantile(x, .99)), ms(x[len(x)-1]))
		}
	}
	if len(r.cost) > 0 {
		fmt.Fprintf(&b, "\n## API cost\n\nLease requests per minute received by the API server (its `apiserver_request_total`), quiet steady state: one leader alone, then two followers added.\n\n")
		fmt.Fprintf(&b, "| profile | implementation | leader | per follower |\n|---|---|---|---|\n")
		for _, c := range r.cost {
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f |\n", c.profile, c.impl, c.leaderPerMin, c.followerPerMin)
		}
	}
	if len(r.scale) > 0 {
		fmt.Fprintf(&b, "\n## Scale\n\nN elections × 3 candidates started at once, default timings; then a steady-state window.\n\n")
		fmt.Fprintf(&b, "| implementation | elections | all led after | lease requests/s | API server CPU s/min |\n|---|---|---|---|---|\n")
		for _, s := range r.scale {
			led := s.allLed.Round(time.Millisecond).String()
			if s.allLed < 0 {
				led = fmt.Sprintf("%d never led", s.failedToStart)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %.2f |\n", s.impl, s.elections, led, s.requestsPerS, s.cpuPerMinute)
		}
	}
	if len(r.footprint) > 0 {
		fmt.Fprintf(&b, "\n## Footprint\n\nThe `incumbent run` sidecar (binary %.1f MiB, built as released: static, stripped, -tags %s), idle with default timings and the status API on, read from /proc.\n\n", r.binMiB, buildinfo.ReleaseTags)
		fmt.Fprintf(&b, "| role | RSS | CPU (one core) |\n|---|---|---|\n")
		for _, f := range r.footprint {
			fmt.Fprintf(&b, "| %s | %.1f MiB | %.2f %% |\n", f.role, f.rssMiB, f.cpuPct)
		}
	}
	return b.String()
}

// chart draws every graceful hand-over sample on a log-scale axis, one row
// per implementation and profile, with p50 and p99 ticks.
func (r *results) chart() string {
	const w, rowH, left, right, top = 900, 50, 230, 30, 40
	h := top + rowH*len(r.graceful) + 50
	lo, hi := math.Log10(0.5), math.Log10(20000.0) // 0.5 ms .. 20 s
	x := func(d time.Duration) float64 {
		v := math.Log10(max(float64(d)/float64(time.Millisecond), 0.5))
		return left + (min(v, hi)-lo)/(hi-lo)*float64(w-left-right)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">Graceful hand-over latency (log scale): leader cancelled → next term started</text>`, left)
	for _, t := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%v</text>`,
			x(t), top, x(t), h-40, x(t), h-25, t)
	}
	colors := map[string]string{"incumbent": "#1f77b4", "client-go": "#d62728"}
	for i, s := range r.graceful {
		y := top + rowH*i + rowH/2
		fmt.Fprintf(&b, `<text x="10" y="%d">%s, %s</text>`, y+4, s.impl, s.profile)
		for _, d := range s.samples {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="3" fill="%s" fill-opacity="0.5"/>`, x(d), y, colors[s.impl])
		}
		sorted := slices.Sorted(slices.Values(s.samples))
		for _, q := range []float64{.5, .99} {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>`, x(quantile(sorted, q)), y-12, x(quantile(sorted, q)), y+12)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">ticks: p50 and p99</text></svg>`, left, h-8)
	return b.String()
}
