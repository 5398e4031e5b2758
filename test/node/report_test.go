//go:build node

package node

import (
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// report collects the tier's measurements: samples of durations and
// counts by name, and free-form lines, in the order they were recorded.
type report struct {
	mu      sync.Mutex
	order   []string
	samples map[string][]time.Duration
	lines   []string
}

func newReport() *report { return &report{samples: map[string][]time.Duration{}} }

// add records one sample of the figure name.
func (r *report) add(name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.samples[name]; !ok {
		r.order = append(r.order, name)
	}
	r.samples[name] = append(r.samples[name], d)
}

// note records a line of the report.
func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// quantile returns the q-quantile (nearest rank) of sorted samples.
func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

// table renders the figures as a markdown table.
func (r *report) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| figure | n | p50 ms | p99 ms | min ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	for _, name := range r.order {
		s := slices.Clone(r.samples[name])
		slices.Sort(s)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", name, len(s), ms(quantile(s, 0.5)), ms(quantile(s, 0.99)), ms(s[0]), ms(s[len(s)-1]))
	}
	return b.String()
}

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "\nnode tier figures:")
	fmt.Fprint(w, r.table())
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		fmt.Fprintln(w, "-", l)
	}
}

// write writes the results page, test/node/results/latest.md, and its
// chart, deletion.svg: the figures whose name contains "deleted".
func (r *report) write() error {
	dir := filepath.Join(moduleRoot(), "test", "node", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Real-node tier: results\n\n")
	fmt.Fprintf(&b, "Written by `go test -tags node -count=1 ./test/node/ -node.report` (as root) on %s, on a %d-core machine: one\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	b.WriteString("single-node Kubernetes v1.37.2 (kubelet, containerd 1.6, runc), pods on a bridge. Every figure is\n")
	b.WriteString("measured from the moment the test sent the request (a pod deletion, a rollout restart, a SIGKILL)\n")
	b.WriteString("to the moment its watch saw the result (a Lease holder, an EndpointSlice, a term reported to the\n")
	b.WriteString("checker), on the test's own clock. Each application exits at once on SIGTERM, except the\n")
	b.WriteString("status-API one, which takes 500 ms to stop. The client-go sidecar is `test/node/nodeapp clientgo`:\n")
	b.WriteString("client-go's `leaderelection` with `ReleaseOnCancel` and its default timings (15 s / 10 s / 2 s),\n")
	b.WriteString("labelling its pod like `--label-pod` does; incumbent runs with the same timings.\n\n")
	b.WriteString("![Leader pod deleted: time until the new leader acts or is routed to](deletion.svg)\n\n")
	b.WriteString("Where a deletion's time goes, from the kubelet's log (`-v=2`, kept in `/var/tmp/incumbent-node/kubelet.log`)\n")
	b.WriteString("and the sidecars' (`/var/tmp/incumbent-node-work/logs/`): the kubelet starts killing the pod either at\n")
	b.WriteString("once or at one of its next one-second sync ticks (the clusters of dots about 1 s and 2 s out); from\n")
	b.WriteString("`Killing container` to the sidecar's withdrawal (its preStop hook, run by the runtime) took 50–120 ms,\n")
	b.WriteString("and from the withdrawal to the next leader's term 10–40 ms. client-go's followers add their polling (up\n")
	b.WriteString("to a 2 s retry period, jittered) to the same kubelet delay.\n\n")
	b.WriteString(r.table())
	r.mu.Lock()
	if len(r.lines) > 0 {
		b.WriteString("\n")
		for _, l := range r.lines {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	r.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "deletion.svg"), []byte(r.chart("deleted")), 0o644)
}

// chart draws every sample of the figures whose name contains match, one
// row of dots per figure on a common millisecond axis, with the median as
// a bar.
func (r *report) chart(match string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	var top time.Duration
	for _, n := range r.order {
		if strings.Contains(n, match) {
			names = append(names, n)
			top = max(top, slices.Max(r.samples[n]))
		}
	}
	const left, width, row, pad = 430, 520, 34, 40
	step := niceStep(top)
	axisMax := time.Duration(int64(top)/int64(step)+1) * step
	x := func(d time.Duration) float64 { return left + float64(d)/float64(axisMax)*width }
	h := pad + row*len(names) + pad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", left+width+30, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for v := time.Duration(0); v <= axisMax; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x(v), pad-10, x(v), h-pad+5, x(v), h-pad+20, ms(v))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">milliseconds (each dot one deletion; bar: median)</text>`+"\n", left+width/2, h-5)
	for i, n := range names {
		y := pad + row*i + row/2
		color := "#1f77b4"
		if strings.HasPrefix(n, "client-go") {
			color = "#d62728"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+4, html.EscapeString(n))
		s := slices.Clone(r.samples[n])
		slices.Sort(s)
		for _, d := range s {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="3.5" fill="%s" fill-opacity="0.55"/>`+"\n", x(d), y, color)
		}
		med := quantile(s, 0.5)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>`+"\n", x(med), y-10, x(med), y+10)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep is a round axis step for values up to top: 1, 2 or 5 times a
// power of ten milliseconds, about five steps in all.
func niceStep(top time.Duration) time.Duration {
	step := time.Millisecond
	for {
		for _, m := range []time.Duration{1, 2, 5} {
			if top/(m*step) <= 6 {
				return m * step
			}
		}
		step *= 10
	}
}
