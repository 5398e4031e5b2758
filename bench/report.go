package main

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
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

type results struct {
	started   time.Time
	took      time.Duration
	graceful  []series
	crash     []series
	cost      []costRow
	scale     []*scaleResult
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
		fmt.Fprintf(&b, "\n")
	}
	if len(r.cost) > 0 {
		fmt.Fprintf(&b, "## API cost\n\nLease requests per minute received by the API server (its `apiserver_request_total`), quiet steady state: one leader alone, then two followers added.\n\n")
		fmt.Fprintf(&b, "| profile | implementation | leader | per follower |\n|---|---|---|---|\n")
		for _, c := range r.cost {
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f |\n", c.profile, c.impl, c.leaderPerMin, c.followerPerMin)
		}
		fmt.Fprintf(&b, "\n")
	}
	if len(r.scale) > 0 {
		scaleMarkdown(&b, r.scale)
	}
	if len(r.footprint) > 0 {
		fmt.Fprintf(&b, "## Footprint\n\nThe `incumbent run` sidecar (binary %.1f MiB, built as released: static, stripped, -tags %s), idle with default timings and the status API on, read from /proc.\n\n", r.binMiB, buildinfo.ReleaseTags)
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

// scaleMarkdown writes the scale profile's section: one row per
// implementation, timing and size, then the targets.
func scaleMarkdown(b *strings.Builder, rows []*scaleResult) {
	prof := rows[0].prof
	fmt.Fprintf(b, "## Scale\n\n")
	fmt.Fprintf(b, "N elections, each with one candidate in each of %d worker processes (the bench binary run again; incumbent: one `kube.Client` per process, so one connection and one shared watch of the namespace's Leases, and an `election.New` per election; client-go: a clientset and a `LeaderElector` per election, as its users have them, ReleaseOnCancel). "+
		"Timings %s; the incumbent rows differ in `RenewInterval`. One fresh namespace per row. ", scaleWorkers, prof.name)
	fmt.Fprintf(b, "*All elected*: from telling the three ready processes to start every election until the last election's first term started. "+
		"*Requests*, *CPU* (the API server's `apiserver_request_total` on leases, `process_cpu_seconds_total`): over a %v steady-state window. "+
		"*RSS/process*: mean VmRSS at the end of the window; *RSS/election*: its growth from before the first election, per election. "+
		"*Conns*: established TCP connections per process to the API server (min–max of the three). "+
		"*Terms ended*: during the window (0 when stable). Then the process leading the most elections is SIGKILLed: *re-elected* is until every election has a leader again, raw and minus the lease duration (%v). "+
		"*Never* / *not re-elected*: elections without a leader %v after the start / the kill. *Overlaps*: pairs of terms of one election that overlapped in time by the processes' reports (must be 0).\n\n",
		rows[0].window, prof.lease, rows[0].limit)
	fmt.Fprintf(b, "| implementation | renew every | elections | all elected | never | lease requests/s | API server CPU s/min | RSS/process | RSS/election | conns | terms ended | re-elected after kill | − lease | not re-elected | overlaps |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var notes []string
	for _, r := range rows {
		cells := []string{r.impl, r.renewEvery().String(), fmt.Sprintf("%s × %d", thousands(r.n), scaleWorkers)}
		if r.skipped != "" {
			cells = append(cells, "not run: "+r.skipped)
			for len(cells) < 15 {
				cells = append(cells, "—")
			}
			fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
			continue
		}
		elected := "—"
		if r.allLed >= 0 {
			elected = seconds(r.allLed)
		}
		cells = append(cells, elected)
		if r.allLed >= 0 || r.neverLed > 0 {
			cells = append(cells, strconv.Itoa(r.neverLed))
		} else {
			cells = append(cells, "—")
		}
		if r.steady {
			lo, hi := slices.Min(r.conns[:]), slices.Max(r.conns[:])
			conns := strconv.Itoa(lo)
			if hi != lo {
				conns = fmt.Sprintf("%d–%d", lo, hi)
			}
			var rss float64
			for _, v := range r.rss {
				rss += float64(v)
			}
			cells = append(cells, fmt.Sprintf("%.1f", r.requestsPS), fmt.Sprintf("%.2f", r.cpuPerMin),
				fmt.Sprintf("%.1f MiB", rss/scaleWorkers/(1<<20)), fmt.Sprintf("%.1f KiB", r.rssPerElection()/1024),
				conns, strconv.Itoa(r.windowEnds))
		} else {
			cells = append(cells, "—", "—", "—", "—", "—", "—")
		}
		if r.crashed {
			re, minus := "—", "—"
			if r.reLed >= 0 {
				re, minus = seconds(r.reLed), signedSeconds(r.reLed-r.prof.lease)
			}
			cells = append(cells, re, minus, strconv.Itoa(r.notReLed), strconv.Itoa(r.overlaps))
		} else {
			cells = append(cells, "—", "—", "—", "—")
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
		what := fmt.Sprintf("%s, renew every %v, %s elections", r.impl, r.renewEvery(), thousands(r.n))
		if r.err != nil {
			notes = append(notes, fmt.Sprintf("%s: stopped early: %v", what, r.err))
		}
		for i, e := range r.errs {
			if i == 3 {
				notes = append(notes, fmt.Sprintf("%s: … %d more candidates stopped for good", what, len(r.errs)-i))
				break
			}
			notes = append(notes, fmt.Sprintf("%s: candidate stopped for good: %s", what, e))
		}
		keys := slices.SortedFunc(maps.Keys(r.logs), func(x, y string) int { return r.logs[y] - r.logs[x] })
		for i, k := range keys {
			if i == 5 {
				notes = append(notes, fmt.Sprintf("%s: … %d more kinds of log records", what, len(keys)-i))
				break
			}
			msg := k
			if len(msg) > 240 {
				msg = msg[:240] + "…"
			}
			notes = append(notes, fmt.Sprintf("%s: logged %d× %s", what, r.logs[k], msg))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(b, "\nThe candidates' warnings and errors (each process counts its own, by level and message, digits folded to N; client-go's through klog):\n\n")
		for _, n := range notes {
			fmt.Fprintf(b, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	scaleTargets(b, rows)
	fmt.Fprintf(b, "\n")
}

// scaleTargets writes the targets for each size measured.
func scaleTargets(b *strings.Builder, rows []*scaleResult) {
	var sizes []int
	for _, r := range rows {
		if !slices.Contains(sizes, r.n) {
			sizes = append(sizes, r.n)
		}
	}
	find := func(n int, impl string, longer bool) *scaleResult {
		for _, r := range rows {
			if r.n == n && r.impl == impl && (r.interval != 0) == longer && r.skipped == "" {
				return r
			}
		}
		return nil
	}
	fmt.Fprintf(b, "\nTargets (issue 9). It states the first four at 1,000 elections × 3 and the last at 10,000 × 3; at other sizes they are shown for reference.\n\n")
	fmt.Fprintf(b, "| elections | measure | target | measured | met |\n|---|---|---|---|---|\n")
	row := func(n int, measure, target, measured string, met bool, known bool) {
		verdict := "—"
		if known {
			verdict = map[bool]string{true: "yes", false: "**no**"}[met]
		}
		fmt.Fprintf(b, "| %s × %d | %s | %s | %s | %s |\n", thousands(n), scaleWorkers, measure, target, measured, verdict)
	}
	for _, n := range sizes {
		inc, longer, cg := find(n, "incumbent", false), find(n, "incumbent", true), find(n, "client-go", false)
		for _, x := range []*scaleResult{inc, longer} {
			if x == nil {
				continue
			}
			measure := fmt.Sprintf("lease requests/s, incumbent (renew every %v) ÷ client-go", x.renewEvery())
			if cg == nil || !cg.steady || !x.steady || cg.requestsPS == 0 {
				row(n, measure, "≤ 1/3", "client-go "+missing(cg), false, false)
				continue
			}
			q := x.requestsPS / cg.requestsPS
			row(n, measure, "≤ 1/3", fmt.Sprintf("%.2f (%.1f / %.1f)", q, x.requestsPS, cg.requestsPS), q <= 1.0/3, true)
		}
		if inc != nil {
			measure := "all elected, incumbent vs client-go"
			if cg == nil || cg.allLed < 0 || inc.allLed < 0 {
				what := "client-go " + missing(cg)
				if inc.allLed < 0 {
					what = fmt.Sprintf("incumbent: %d never elected", inc.neverLed)
				}
				row(n, measure, "no slower", what, false, cg != nil && cg.allLed >= 0)
			} else {
				row(n, measure, "no slower", fmt.Sprintf("%s vs %s", seconds(inc.allLed), seconds(cg.allLed)), inc.allLed <= cg.allLed, true)
			}
			if inc.steady {
				g := inc.rssPerElection() / 1024
				row(n, "RSS growth per election, incumbent", "< 20 KiB", fmt.Sprintf("%.1f KiB", g), g < 20, true)
			}
			if inc.allLed >= 0 {
				row(n, "all elected, incumbent", "≤ 10 s", seconds(inc.allLed), inc.allLed <= 10*time.Second, true)
			} else {
				row(n, "all elected, incumbent", "≤ 10 s", fmt.Sprintf("%d never elected", inc.neverLed), false, true)
			}
		}
	}
}

// missing says why a client-go row gives no figure.
func missing(r *scaleResult) string {
	switch {
	case r == nil:
		return "not run"
	case r.skipped != "":
		return "not run (see above)"
	case r.err != nil:
		return "stopped early"
	case r.allLed < 0:
		return fmt.Sprintf("%d never elected", r.neverLed)
	}
	return "—"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func signedSeconds(d time.Duration) string { return fmt.Sprintf("%+.3f s", d.Seconds()) }

// thousands writes n with commas: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
