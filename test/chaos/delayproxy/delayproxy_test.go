package delayproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a loopback server that echoes every connection.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T) (*Proxy, net.Conn) {
	t.Helper()
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return p, c
}

// roundTrip sends data and reads back as many bytes.
func roundTrip(t *testing.T, c net.Conn, data []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestForwardsEverythingInOrder(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		p, c := start(t)
		p.SetDelay(delay)
		data := make([]byte, 1<<20)
		rand.Read(data)
		if got := roundTrip(t, c, data); !bytes.Equal(got, data) {
			t.Fatalf("delay %v: 1 MiB came back altered", delay)
		}
		// Many small writes, each its own chunk.
		var sent []byte
		for i := range 200 {
			sent = append(sent, byte(i))
		}
		if got := roundTrip(t, c, sent); !bytes.Equal(got, sent) {
			t.Fatalf("delay %v: small writes came back reordered or altered", delay)
		}
	}
}

// A chunk is held for the delay in each direction: a round trip takes at
// least twice the delay (a lower bound, which no slowness can break).
func TestDelaysBothDirections(t *testing.T) {
	p, c := start(t)
	const delay = 150 * time.Millisecond
	p.SetDelay(delay)
	if p.Delay() != delay {
		t.Fatalf("Delay() = %v, want %v", p.Delay(), delay)
	}
	began := time.Now()
	roundTrip(t, c, []byte("ping"))
	if took := time.Since(began); took < 2*delay {
		t.Fatalf("a round trip took %v with a delay of %v each way, want at least %v", took, delay, 2*delay)
	}
	p.SetDelay(-time.Second)
	if p.Delay() != 0 {
		t.Fatalf("a negative delay was stored as %v, want 0", p.Delay())
	}
	began = time.Now()
	roundTrip(t, c, []byte("pong"))
	t.Logf("round trip without delay: %v", time.Since(began))
}

func TestCloseEndsConnections(t *testing.T) {
	p, c := start(t)
	roundTrip(t, c, []byte("hello"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		t.Fatalf("read after Close: %v, want the connection closed", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
