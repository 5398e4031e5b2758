package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// serverCounters reads the API server's own counters from its /metrics:
// requests on leases, all requests, and its CPU seconds.
type serverCounters struct {
	leaseRequests float64
	allRequests   float64
	cpuSeconds    float64
}

func scrape(cfg *rest.Config) (serverCounters, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return serverCounters{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return serverCounters{}, fmt.Errorf("scrape the API server's /metrics: %w", err)
	}
	var c serverCounters
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := cutMetric(line)
		if !ok {
			continue
		}
		switch {
		case name == "apiserver_request_total":
			c.allRequests += value
			if strings.Contains(line, `resource="leases"`) {
				c.leaseRequests += value
			}
		case name == "process_cpu_seconds_total":
			c.cpuSeconds = value
		}
	}
	return c, sc.Err()
}

// cutMetric splits a Prometheus text line into its metric name and value.
func cutMetric(line string) (string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		return "", 0, false
	}
	name := line[:i]
	if j := strings.IndexAny(name, "{ "); j >= 0 {
		name = name[:j]
	}
	return name, v, true
}

// apiCost measures the lease requests per minute the API server receives in
// a quiet steady state: first from one leader alone, then with `followers`
// more candidates, each counted over window.
type apiCostResult struct {
	leaderPerMin, followerPerMin float64
}

func apiCost(im impl, admin *rest.Config, ns, lease string, prof profile, followers int, window time.Duration) (apiCostResult, error) {
	p := newPool(im, admin, ns, lease, prof)
	defer p.close()
	if err := p.add(); err != nil {
		return apiCostResult{}, err
	}
	if _, _, err := p.log.waitOther("", 3*prof.lease); err != nil {
		return apiCostResult{}, err
	}
	measure := func() (float64, error) {
		time.Sleep(prof.retry) // let start-up requests land before counting
		before, err := scrape(admin)
		if err != nil {
			return 0, err
		}
		time.Sleep(window)
		after, err := scrape(admin)
		if err != nil {
			return 0, err
		}
		return (after.leaseRequests - before.leaseRequests) / window.Minutes(), nil
	}
	leader, err := measure()
	if err != nil {
		return apiCostResult{}, err
	}
	for range followers {
		if err := p.add(); err != nil {
			return apiCostResult{}, err
		}
	}
	all, err := measure()
	if err != nil {
		return apiCostResult{}, err
	}
	return apiCostResult{leaderPerMin: leader, followerPerMin: (all - leader) / float64(followers)}, nil
}
