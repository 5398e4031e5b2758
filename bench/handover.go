package main

import (
	"fmt"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/tcpproxy"
)

// leadLog records term starts, and lets a caller wait for the next one.
type leadLog struct {
	mu      sync.Mutex
	leader  string
	at      time.Time
	changed chan struct{}
}

func newLeadLog() *leadLog { return &leadLog{changed: make(chan struct{}, 1)} }

func (l *leadLog) onLead(id string) {
	l.mu.Lock()
	l.leader, l.at = id, time.Now()
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// waitOther waits until a candidate other than not leads, and returns it
// and when its term started.
func (l *leadLog) waitOther(not string, limit time.Duration) (string, time.Time, error) {
	deadline := time.After(limit)
	for {
		l.mu.Lock()
		id, at := l.leader, l.at
		l.mu.Unlock()
		if id != "" && id != not {
			return id, at, nil
		}
		select {
		case <-l.changed:
		case <-deadline:
			return "", time.Time{}, fmt.Errorf("no new leader within %v", limit)
		}
	}
}

// pool keeps a fixed number of candidates of one implementation running in
// one election, each reaching the API server through its own cuttable proxy.
type pool struct {
	impl    impl
	cfg     *rest.Config
	ns      string
	lease   string
	p       profile
	log     *leadLog
	next    int
	stops   map[string]func()
	proxies map[string]*tcpproxy.Proxy
}

func newPool(im impl, cfg *rest.Config, ns, lease string, p profile) *pool {
	return &pool{impl: im, cfg: cfg, ns: ns, lease: lease, p: p, log: newLeadLog(),
		stops: map[string]func(){}, proxies: map[string]*tcpproxy.Proxy{}}
}

// add starts one more candidate behind a fresh proxy.
func (p *pool) add() error {
	u, err := url.Parse(p.cfg.Host)
	if err != nil {
		return err
	}
	px, err := tcpproxy.Start(u.Host)
	if err != nil {
		return err
	}
	c := rest.CopyConfig(p.cfg)
	c.Host = "https://" + px.Addr()
	id := fmt.Sprintf("%s-%d", p.impl.name(), p.next)
	p.next++
	stop, err := p.impl.start(c, p.ns, p.lease, id, p.p, p.log.onLead)
	if err != nil {
		px.Close()
		return err
	}
	p.stops[id], p.proxies[id] = stop, px
	return nil
}

// remove stops a candidate (releasing if it can still reach the server).
func (p *pool) remove(id string) {
	p.stops[id]()
	p.proxies[id].Close()
	delete(p.stops, id)
	delete(p.proxies, id)
}

func (p *pool) close() {
	for id := range p.stops {
		p.remove(id)
	}
}

// handovers measures n graceful hand-overs (the leader's context is
// cancelled; it releases) or crash take-overs (the leader's connection is
// cut; it cannot release), each time from that moment to the next term's
// start. Crash samples are reported minus the lease duration.
func handovers(im impl, cfg *rest.Config, ns, lease string, prof profile, size, n int, crash bool) ([]time.Duration, error) {
	p := newPool(im, cfg, ns, lease, prof)
	defer p.close()
	for range size {
		if err := p.add(); err != nil {
			return nil, err
		}
	}
	limit := 3*prof.lease + 10*time.Second
	leader, _, err := p.log.waitOther("", limit)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for range n {
		var t0 time.Time
		var stopped chan struct{}
		if crash {
			t0 = time.Now()
			p.proxies[leader].Set(tcpproxy.Refuse)
		} else {
			stop, px := p.stops[leader], p.proxies[leader]
			delete(p.stops, leader)
			delete(p.proxies, leader)
			stopped = make(chan struct{})
			t0 = time.Now()
			go func() { stop(); px.Close(); close(stopped) }()
		}
		next, at, err := p.log.waitOther(leader, limit)
		if err != nil {
			return out, err
		}
		d := at.Sub(t0)
		if crash {
			d -= prof.lease
			p.remove(leader)
		} else {
			<-stopped
		}
		out = append(out, d)
		if err := p.add(); err != nil {
			return out, err
		}
		leader = next
	}
	return out, nil
}
