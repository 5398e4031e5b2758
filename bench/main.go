// Command bench measures incumbent against client-go's leaderelection on one
// real kube-apiserver and etcd, in the same run, and writes a markdown table
// and an SVG chart to bench/results/.
//
//	go run ./bench                       # the full run
//	go run ./bench -quick                # a smoke run (a few minutes)
//	go run ./bench -only scale -scale 100 -scale-window 10s
//
// The scale profile runs the bench binary itself as three worker processes
// (see worker.go).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
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
	scaleLimit            time.Duration
	scaleInterval         time.Duration   // incumbent's second RenewInterval; 0: no such row
	scaleSkip             map[string]bool // rows left out: "client-go", "incumbent", "incumbent-default"
	scaleProfile          profile
	footprintWindow       time.Duration
	profiles              []profile
	sections              map[string]bool
	out                   string
}

// sections are what -only chooses from.
var sections = []string{"graceful", "crash", "cost", "scale", "footprint"}

func main() {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain(os.Args[1:]))
	}
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
	scaleFlag := fs.String("scale", "1000,10000", "comma-separated numbers of elections for the scale profile (each with one candidate in each of 3 processes); empty to skip")
	scaleWindow := fs.Duration("scale-window", 30*time.Second, "steady-state window for the scale profile")
	scaleInterval := fs.Duration("scale-renew-interval", 5*time.Second, "incumbent's renew interval (election.Config.RenewInterval) in the scale profile's second incumbent row; 0 for no such row")
	scaleLimit := fs.Duration("scale-limit", 5*time.Minute, "in the scale profile, how long to wait for every election to have a leader before counting those without")
	skip := fs.String("scale-skip", "", "comma-separated rows of the scale profile to leave out: client-go, incumbent, incumbent-default (the row at the default renew interval)")
	only := fs.String("only", "", "comma-separated sections to run ("+strings.Join(sections, ", ")+"); default all")
	fpWindow := fs.Duration("footprint-window", 30*time.Second, "idle window for the sidecar footprint")
	out := fs.String("out", "bench/results", "folder for the results")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := options{samples: *samples, crashSamples: *crash, costWindow: *window, scaleWindow: *scaleWindow, footprintWindow: *fpWindow,
		scaleLimit: *scaleLimit, scaleInterval: *scaleInterval, scaleProfile: defaultProfile, scaleSkip: map[string]bool{},
		profiles: []profile{defaultProfile, shortProfile}, out: *out}
	if *quick {
		o.samples, o.crashSamples, o.costWindow, o.scaleWindow, o.footprintWindow = 5, 2, 5*time.Second, 5*time.Second, 3*time.Second
		o.profiles = []profile{shortProfile}
		o.scaleProfile, o.scaleLimit = shortProfile, time.Minute
		if !set["scale"] {
			*scaleFlag = "5"
		}
		if !set["scale-renew-interval"] {
			o.scaleInterval = time.Second // the short profile allows at most 1.5s
		}
	}
	if *only != "" {
		o.sections = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(sections, s) {
				return options{}, fmt.Errorf("-only: unknown section %q (want some of %s)", s, strings.Join(sections, ", "))
			}
			o.sections[s] = true
		}
	}
	for _, r := range strings.Split(*skip, ",") {
		switch r = strings.TrimSpace(r); r {
		case "":
		case "client-go", "incumbent", "incumbent-default":
			o.scaleSkip[r] = true
		default:
			return options{}, fmt.Errorf("-scale-skip: unknown row %q: want client-go, incumbent or incumbent-default", r)
		}
	}
	if p := o.scaleProfile; o.scaleInterval < 0 || o.scaleInterval+p.retry > p.renew {
		return options{}, fmt.Errorf("-scale-renew-interval: %v plus the retry period %v must be at most the renew deadline %v", o.scaleInterval, p.retry, p.renew)
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
	if o.samples <= 0 || o.crashSamples <= 0 || o.costWindow <= 0 || o.scaleWindow <= 0 || o.scaleLimit <= 0 || o.footprintWindow <= 0 {
		return options{}, fmt.Errorf("-samples, -crash-samples, -cost-window, -scale-window, -scale-limit and -footprint-window must be positive")
	}
	return o, nil
}

// runs says whether section is to be run.
func (o options) runs(section string) bool { return o.sections == nil || o.sections[section] }

// scaleSpecs are the scale profile's rows at n elections: incumbent with
// default timings, incumbent with the longer renew interval, client-go.
func (o options) scaleSpecs(n int) []scaleSpec {
	base := scaleSpec{n: n, prof: o.scaleProfile, window: o.scaleWindow, limit: o.scaleLimit}
	inc, longer, cg := base, base, base
	inc.impl, longer.impl, cg.impl = "incumbent", "incumbent", "client-go"
	longer.interval = o.scaleInterval
	specs := []scaleSpec{inc, longer, cg}
	if o.scaleInterval == 0 || o.scaleInterval == o.scaleProfile.retry {
		specs = []scaleSpec{inc, cg}
	}
	return slices.DeleteFunc(specs, func(sp scaleSpec) bool {
		return o.scaleSkip[sp.impl] || (sp.interval == 0 && o.scaleSkip["incumbent-default"] && sp.impl == "incumbent")
	})
}

// cannotRun says why spec cannot run on this machine, or "". The one
// reason is memory: a row of the same implementation at a smaller size
// gives the RSS per election, and the row is skipped when its three
// workers would need more than 80% of the memory available now.
func cannotRun(spec scaleSpec, done []*scaleResult) string {
	avail := memAvailable()
	if avail == 0 {
		return ""
	}
	for _, r := range slices.Backward(done) {
		if r.impl != spec.impl || r.interval != spec.interval || !r.steady || r.n >= spec.n {
			continue
		}
		var base int64
		for _, b := range r.baseRSS {
			base = max(base, b)
		}
		need := scaleWorkers * (float64(base) + max(r.rssPerElection(), 0)*float64(spec.n))
		if need > 0.8*float64(avail) {
			return fmt.Sprintf("its %d workers would need about %.1f GiB (%.1f KiB per election at %d elections), and %.1f GiB is available",
				scaleWorkers, need/(1<<30), r.rssPerElection()/1024, r.n, float64(avail)/(1<<30))
		}
		return ""
	}
	return ""
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
			killWorkers()
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

	for _, p := range o.profiles {
		for _, im := range impls {
			if o.runs("graceful") {
				say("graceful hand-over: %s, %s, %d samples", im.name(), p.name, o.samples)
				g, err := handovers(im, env.Config, "default", lease("graceful"), p, 3, o.samples, false)
				if err != nil {
					return "", fmt.Errorf("graceful hand-over, %s, %s: %w", im.name(), p.name, err)
				}
				res.graceful = append(res.graceful, series{im.name(), p.name, g})
			}
			if o.runs("crash") {
				say("crash take-over: %s, %s, %d samples", im.name(), p.name, o.crashSamples)
				c, err := handovers(im, env.Config, "default", lease("crash"), p, 3, o.crashSamples, true)
				if err != nil {
					return "", fmt.Errorf("crash take-over, %s, %s: %w", im.name(), p.name, err)
				}
				res.crash = append(res.crash, series{im.name(), p.name, c})
			}
			if o.runs("cost") {
				say("API cost: %s, %s, %v windows", im.name(), p.name, o.costWindow)
				a, err := apiCost(im, env.Config, "default", lease("cost"), p, 2, o.costWindow)
				if err != nil {
					return "", fmt.Errorf("API cost, %s, %s: %w", im.name(), p.name, err)
				}
				res.cost = append(res.cost, costRow{im.name(), p.name, a})
			}
		}
	}
	if o.runs("scale") && len(o.scaleSizes) > 0 {
		se, err := newScaleEnv(env.Config)
		if err != nil {
			return "", fmt.Errorf("scale: %w", err)
		}
		defer se.close()
		for _, n := range o.scaleSizes {
			for _, spec := range o.scaleSpecs(n) {
				say("scale: %s, renew every %v, %d elections x %d processes", spec.impl, spec.renewEvery(), n, scaleWorkers)
				if why := cannotRun(spec, res.scale); why != "" {
					say("  skipped: %s", why)
					res.scale = append(res.scale, &scaleResult{scaleSpec: spec, skipped: why, allLed: -1, reLed: -1})
					continue
				}
				r := se.row(spec, say)
				if r.err != nil {
					say("  stopped: %v", r.err)
				}
				res.scale = append(res.scale, r)
				time.Sleep(2 * spec.prof.retry) // let the API server settle before the next row
			}
		}
	}
	if o.runs("footprint") {
		say("footprint: idle leader and follower sidecars, default timings, %v window", o.footprintWindow)
		res.binMiB, res.footprint, err = footprint(env.Config, "default", o.footprintWindow)
		if err != nil {
			return "", fmt.Errorf("footprint: %w", err)
		}
	}
	res.took = time.Since(res.started)
	report := res.markdown()
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
	files := []string{"latest.md"}
	if len(res.graceful) > 0 { // the chart draws the hand-overs only
		if err := os.WriteFile(svg, []byte(res.chart()), 0o644); err != nil {
			return "", err
		}
		files = append(files, "latest.svg")
	}
	for _, f := range files {
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
	if len(files) > 1 {
		say("wrote %s and %s", md, svg)
	} else {
		say("wrote %s", md)
	}
	return report, nil
}
