// Command child is the workload of the fault-injection harness, run by
// `incumbent run -- child` only while its sidecar leads. It reports to the
// checker at CHAOS_CHECKER (an http:// URL on loopback):
//
//	POST /begin?token=T&id=I&pid=P   once, at start
//	POST /write?token=T&id=I         every 10ms, one at a time
//	POST /end?token=T&id=I           on SIGTERM, after its last write; then exit 0
//
// T is INCUMBENT_TERM, I is INCUMBENT_IDENTITY. A write refused by fencing
// (409) is not fatal: the child keeps writing, as a deposed leader that has
// not yet been told would, and only the checker's counts tell.
//
// With CHAOS_API set (the API-server profile), each write is instead an
// update of a ConfigMap through the Kubernetes API server with the token of
// the child's pod (see apiWriter), reported with the API server's verdict:
//
//	POST /write?token=T&id=I&outcome=accepted&rv=R   R: the ConfigMap's resourceVersion
//	POST /write?token=T&id=I&outcome=refused         refused by the fence policy
//
// Other failures (the API server unreachable) are logged, not reported.
//
// With CHAOS_STUBBORN_EVERY=N (N > 0), a child whose token is N-1 modulo N
// ignores SIGTERM and keeps writing until incumbent SIGKILLs it at the end
// of its grace period: its term then ends at its last write, which must
// still come before the next term begins.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	// SIGTERM is caught before anything else, so that a term that ends at
	// once still ends with /end.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if err := run(sigs); err != nil {
		fmt.Fprintln(os.Stderr, "chaos child:", err)
		os.Exit(1)
	}
}

func run(sigs <-chan os.Signal) error {
	base, token, id := os.Getenv("CHAOS_CHECKER"), os.Getenv("INCUMBENT_TERM"), os.Getenv("INCUMBENT_IDENTITY")
	if base == "" || id == "" {
		return errors.New("CHAOS_CHECKER and INCUMBENT_IDENTITY must be set")
	}
	tok, err := strconv.ParseInt(token, 10, 64)
	if err != nil {
		return fmt.Errorf("INCUMBENT_TERM %q is not a token: %w", token, err)
	}
	stubborn := false
	if v := os.Getenv("CHAOS_STUBBORN_EVERY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("CHAOS_STUBBORN_EVERY %q is not a positive integer", v)
		}
		stubborn = tok%n == n-1
	}
	client := &http.Client{Timeout: 2 * time.Second}
	post := func(path string, extra url.Values) (int, error) {
		q := url.Values{"token": {token}, "id": {id}}
		for k, v := range extra {
			q[k] = v
		}
		resp, err := client.Post(base+path+"?"+q.Encode(), "", nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	api, err := newAPIWriter()
	if err != nil {
		return err
	}
	write := func() (int, error) { return post("/write", nil) }
	if api != nil {
		write = func() (int, error) {
			rv, err := api.write(token, id)
			switch {
			case errors.Is(err, errRefused):
				return post("/write", url.Values{"outcome": {"refused"}})
			case err != nil:
				return 0, fmt.Errorf("the API server: %w", err)
			}
			return post("/write", url.Values{"outcome": {"accepted"}, "rv": {strconv.FormatInt(rv, 10)}})
		}
	}

	if code, err := post("/begin", url.Values{"pid": {strconv.Itoa(os.Getpid())}}); err != nil || code != http.StatusOK {
		return fmt.Errorf("begin term %s: status %d, %v", token, code, err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	rejected := false
	for {
		select {
		case <-sigs:
			if stubborn {
				fmt.Fprintf(os.Stderr, "chaos child %s (term %s): ignoring SIGTERM\n", id, token)
				continue
			}
			if code, err := post("/end", nil); err != nil || code != http.StatusOK {
				return fmt.Errorf("end term %s: status %d, %v", token, code, err)
			}
			return nil
		case <-tick.C:
			code, err := write()
			switch {
			case err != nil:
				fmt.Fprintf(os.Stderr, "chaos child %s (term %s): write: %v\n", id, token, err)
			case code == http.StatusConflict && !rejected:
				rejected = true
				fmt.Fprintf(os.Stderr, "chaos child %s (term %s): write refused by fencing\n", id, token)
			case code != http.StatusOK && code != http.StatusConflict:
				fmt.Fprintf(os.Stderr, "chaos child %s (term %s): write: status %d\n", id, token, code)
			}
		}
	}
}
