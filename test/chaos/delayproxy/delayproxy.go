// Package delayproxy is a TCP proxy on loopback that holds every chunk of
// data, in both directions, for a settable delay before passing it on: the
// server looks slow, nothing is lost or reordered.
package delayproxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target, with no
// delay until SetDelay.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay sets how long each chunk read from now on is held before it is
// written on; zero passes chunks on at once (after those already held).
// A negative delay counts as zero.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// Delay is the current delay.
func (p *Proxy) Delay() time.Duration { return time.Duration(p.delay.Load()) }

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward joins c to a new connection to the target until either side ends.
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, s) {
		c.Close()
		s.Close()
		return
	}
	done := make(chan struct{}) // closed when the pair is torn down
	var once sync.Once
	teardown := func() {
		once.Do(func() {
			close(done)
			c.Close()
			s.Close()
		})
	}
	var pipes sync.WaitGroup
	pipes.Go(func() { p.pipe(c, s, done, teardown) })
	pipes.Go(func() { p.pipe(s, c, done, teardown) })
	pipes.Wait()
	p.untrack(c, s)
}

// chunk is data read from one side, to be written to the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, holding each chunk for the delay in force when it
// was read. When src ends (after writing what it read), when dst fails, or
// when done is closed, it tears the pair down and returns once its reader
// has stopped.
func (p *Proxy) pipe(src, dst net.Conn, done <-chan struct{}, teardown func()) {
	chunks := make(chan chunk, 1024)
	var reader sync.WaitGroup
	defer reader.Wait()
	defer teardown()
	reader.Go(func() {
		defer close(chunks)
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				ch := chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.Delay())}
				select {
				case chunks <- ch:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ch := range chunks {
		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-done:
				return
			}
		}
		if _, err := dst.Write(ch.data); err != nil {
			return
		}
	}
}
