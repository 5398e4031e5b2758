package tcpproxy

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves lines back on a loopback port.
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
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write(append(sc.Bytes(), '\n'))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through addr and returns the answer or an error.
func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("wrong answer " + line)
	}
	return nil
}

func TestModes(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("pass: %v", err)
	}
	p.Set(Refuse)
	if err := roundTrip(p.Addr()); err == nil {
		t.Fatal("refuse: the round trip went through")
	}
	p.Set(Blackhole)
	if err := roundTrip(p.Addr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blackhole: got %v, want a timeout", err)
	}
	p.Set(Pass)
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("pass again: %v", err)
	}
}
