// Command bench measures incumbent against client-go's leaderelection on one
// real kube-apiserver and etcd, in the same run, and writes a markdown table
// and an SVG chart to bench/results/.
//
//	go run ./bench                  # the full run (about 25 minutes)
//	go run ./bench -quick           # a smoke run (about a minute)
//	go run ./bench -only footprint  # the sidecar's footprint only, printed, not written
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

type options struct {
	samples, crashSamples int
	costWindow            time.Duration
	scaleSizes            []int
	scaleWindow           time.Duration
	footprintWindow       time.Duration
	profiles              []profile
	out                   string
	only                  string // "footprint": that part alone, printed only
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	report, err := run(o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Println(report)
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a short smoke run: few samples, short profile only")
	samples := fs.Int("samples", 50, "graceful hand-over samples per implementation and profile")
	crash := fs.Int("crash-samples", 10, "crash take-over samples per implementation and profile")
	window := fs.Duration("cost-window", time.Minute, "steady-state window for the API cost")
	scaleFlag := fs.String("scale", "10,100", "comma-separated numbers of elections (3 candidates each) for the scale run; empty to skip")
	scaleWindow := fs.Duration("scale-window", 30*time.Second, "steady-state window for the scale run")
	fpWindow := fs.Duration("footprint-window", 30*time.Second, "idle window for the sidecar footprint")
	out := fs.String("out", "bench/results", "folder for the results")
	only := fs.String("only", "", "measure only this part (footprint) and print it, writing nothing to -out")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *only != "" && *only != "footprint" {
		return options{}, fmt.Errorf("-only %q: the one part that runs alone is footprint", *only)
	}
	o := options{samples: *samples, crashSamples: *crash, costWindow: *window, scaleWindow: *scaleWindow, footprintWindow: *fpWindow,
		profiles: []profile{defaultProfile, shortProfile}, out: *out, only: *only}
	if *quick {
		o.samples, o.crashSamples, o.costWindow, o.scaleWindow, o.footprintWindow = 5, 2, 5*time.Second, 5*time.Second, 3*time.Second
		o.profiles = []profile{shortProfile}
		*scaleFlag = "5"
	}
	for _, f := range strings.Split(*scaleFlag, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return options{}, fmt.Errorf("-scale: %q is not a positive number", f)
		}
		o.scaleSizes = append(o.scaleSizes, n)
	}
	if o.samples <= 0 || o.crashSamples <= 0 || o.costWindow <= 0 || o.scaleWindow <= 0 || o.footprintWindow <= 0 {
		return options{}, fmt.Errorf("-samples, -crash-samples, -cost-window, -scale-window and -footprint-window must be positive")
	}
	return o, nil
}

// run performs every measurement and returns the markdown report, which it
// also writes with the chart into o.out.
func run(o options, progress io.Writer) (string, error) {
	klog.SetLogger(logr.Discard()) // client-go's own logging would drown the report
	env, err := testenv.Start()
	if err != nil {
		return "", err
	}
	defer env.Stop()
	// Interrupted, stop the API server and etcd too rather than orphan them.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() { signal.Stop(sigs); close(done) }()
	go func() {
		select {
		case <-sigs:
			env.Stop()
			os.Exit(130)
		case <-done:
		}
	}()
	impls := []impl{incumbentImpl{}, clientGoImpl{}}
	res := &results{started: time.Now()}
	seq := 0
	lease := func(kind string) string { seq++; return fmt.Sprintf("bench-%s-%d", kind, seq) }
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }

	if o.only != "" {
		o.profiles, o.scaleSizes = nil, nil
	}
	for _, p := range o.profiles {
		for _, im := range impls {
			say("graceful hand-over: %s, %s, %d samples", im.name(), p.name, o.samples)
			g, err := handovers(im, env.Config, "default", lease("graceful"), p, 3, o.samples, false)
			if err != nil {
				return "", fmt.Errorf("graceful hand-over, %s, %s: %w", im.name(), p.name, err)
			}
			res.graceful = append(res.graceful, series{im.name(), p.name, g})
			say("crash take-over: %s, %s, %d samples", im.name(), p.name, o.crashSamples)
			c, err := handovers(im, env.Config, "default", lease("crash"), p, 3, o.crashSamples, true)
			if err != nil {
				return "", fmt.Errorf("crash take-over, %s, %s: %w", im.name(), p.name, err)
			}
			res.crash = append(res.crash, series{im.name(), p.name, c})
			say("API cost: %s, %s, %v windows", im.name(), p.name, o.costWindow)
			a, err := apiCost(im, env.Config, "default", lease("cost"), p, 2, o.costWindow)
			if err != nil {
				return "", fmt.Errorf("API cost, %s, %s: %w", im.name(), p.name, err)
			}
			res.cost = append(res.cost, costRow{im.name(), p.name, a})
		}
	}
	for _, n := range o.scaleSizes {
		for _, im := range impls {
			say("scale: %s, %d elections x 3 candidates", im.name(), n)
			r, err := scale(im, env.Config, "default", defaultProfile, n, o.scaleWindow)
			if err != nil {
				return "", fmt.Errorf("scale, %s, %d: %w", im.name(), n, err)
			}
			res.scale = append(res.scale, scaleRow{im.name(), r})
		}
	}
	say("footprint: idle leader and follower sidecars, default timings, %v window", o.footprintWindow)
	res.binMiB, res.footprint, err = footprint(env.Config, "default", o.footprintWindow)
	if err != nil {
		return "", fmt.Errorf("footprint: %w", err)
	}
	res.took = time.Since(res.started)
	report := res.markdown()
	if o.only != "" {
		return report, nil
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	stamp := res.started.UTC().Format("2006-01-02T150405Z")
	md := filepath.Join(o.out, stamp+".md")
	svg := filepath.Join(o.out, stamp+".svg")
	report = strings.Replace(report, "CHART", filepath.Base(svg), 1)
	if err := os.WriteFile(md, []byte(report), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(svg, []byte(res.chart()), 0o644); err != nil {
		return "", err
	}
	for _, f := range []string{"latest.md", "latest.svg"} {
		src := md
		if strings.HasSuffix(f, ".svg") {
			src = svg
		}
		data, _ := os.ReadFile(src)
		if strings.HasSuffix(f, ".md") {
			data = []byte(strings.Replace(string(data), filepath.Base(svg), "latest.svg", 1))
		}
		if err := os.WriteFile(filepath.Join(o.out, f), data, 0o644); err != nil {
			return "", err
		}
	}
	say("wrote %s and %s", md, svg)
	return report, nil
}
