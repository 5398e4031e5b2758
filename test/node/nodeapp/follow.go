package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// view is the part of the sidecar's status view that follow reads.
type view struct {
	IsLeader bool  `json:"isLeader"`
	Term     int64 `json:"term"`
}

// acting is one term of work: writes to the checker until stopped.
type acting struct {
	token  int64
	cancel context.CancelFunc
	done   chan struct{}
}

func follow(sigs <-chan os.Signal) error {
	sidecar := env("SIDECAR", "http://127.0.0.1:4040")
	control := env("CONTROL", "http://127.0.0.1:4041")
	checker, id := os.Getenv("CHECKER"), env("POD_NAME", "")
	if checker == "" || id == "" {
		return fmt.Errorf("CHECKER and POD_NAME must be set")
	}
	delay, err := time.ParseDuration(env("STOP_DELAY", "0s"))
	if err != nil {
		return fmt.Errorf("STOP_DELAY: %w", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	post := func(base, path string, q url.Values) error {
		resp, err := client.Post(base+path+"?"+q.Encode(), "", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("POST %s%s: %s", base, path, resp.Status)
		}
		return nil
	}
	params := func(token int64) url.Values {
		return url.Values{"token": {strconv.FormatInt(token, 10)}, "id": {id}}
	}
	var cur *acting
	stop := func(ack bool) {
		if cur == nil {
			return
		}
		time.Sleep(delay) // the application's own shutdown work
		cur.cancel()
		<-cur.done
		if err := post(checker, "/end", params(cur.token)); err != nil {
			fmt.Fprintln(os.Stderr, "follow: end:", err)
		}
		fmt.Fprintf(os.Stderr, "follow: stopped term %d\n", cur.token)
		cur = nil
		if ack {
			if err := post(control, "/v1/stepped-down", nil); err != nil {
				fmt.Fprintln(os.Stderr, "follow: acknowledge:", err)
			}
		}
	}
	start := func(token int64) {
		q := params(token)
		q.Set("pid", strconv.Itoa(os.Getpid()))
		if err := post(checker, "/begin", q); err != nil {
			fmt.Fprintln(os.Stderr, "follow: begin:", err)
		}
		fmt.Fprintf(os.Stderr, "follow: acting in term %d\n", token)
		ctx, cancel := context.WithCancel(context.Background())
		a := &acting{token: token, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(a.done)
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					_ = post(checker, "/write", params(token))
				}
			}
		}()
		cur = a
	}

	views := make(chan view)
	lost := make(chan error, 1)
	go watch(sidecar, views, lost)
	for {
		select {
		case <-sigs:
			stop(true)
			// Whether the sidecar still runs now that this application has
			// stopped: a native sidecar must outlive it.
			sidecarUp := "down"
			if resp, err := client.Get(sidecar + "/v1/status"); err == nil {
				resp.Body.Close()
				sidecarUp = "up"
			}
			if err := post(checker, "/exit", url.Values{"id": {id}, "sidecar": {sidecarUp}}); err != nil {
				fmt.Fprintln(os.Stderr, "follow: report the exit:", err)
			}
			return nil
		case err := <-lost:
			// Without a stream this application cannot know it still leads.
			fmt.Fprintln(os.Stderr, "follow: watch lost:", err)
			stop(false)
			time.Sleep(200 * time.Millisecond)
			go watch(sidecar, views, lost)
		case v := <-views:
			switch {
			case v.IsLeader && (cur == nil || cur.token != v.Term):
				stop(cur != nil)
				start(v.Term)
			case !v.IsLeader && cur != nil:
				stop(true)
			}
		}
	}
}

// watch reads the sidecar's SSE stream and sends each view until the
// stream ends.
func watch(base string, views chan<- view, lost chan<- error) {
	resp, err := http.Get(base + "/v1/watch")
	if err != nil {
		lost <- err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		lost <- fmt.Errorf("GET /v1/watch: %s", resp.Status)
		return
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var v view
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			lost <- fmt.Errorf("/v1/watch: %w", err)
			return
		}
		views <- v
	}
	lost <- fmt.Errorf("/v1/watch ended: %v", sc.Err())
}
