package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonLines decodes every line of b, failing the test on one that is not a
// JSON object.
func jsonLines(t *testing.T, b string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// truncatingServer answers every HTTP request with headers that promise a
// body longer than the one it sends, then closes the connection: an API
// server that dies in the middle of a response. client-go logs that through
// klog ("Unexpected error when reading response body").
func truncatingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":"))
			})
		}
	}()
	return ln.Addr().String()
}

func writeKubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	doc := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: prod}}]
current-context: x
`
	if err := os.WriteFile(kc, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

// TestJSONModeKlogLinesAreJSON runs a command in a pod (JSON logs by
// default) against an API server that breaks its response: client-go's
// klog error and the fatal error must both be JSON lines on the command's
// stderr.
func TestJSONModeKlogLinesAreJSON(t *testing.T) {
	kc := writeKubeconfigFor(t, "http://"+truncatingServer(t))
	e, out, errb := fakeEnv(t, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
		"status", "--kubeconfig", kc, "--lease", "db")
	code := Main(context.Background(), *e)
	if code != ExitFailure {
		t.Errorf("exit %d, want %d; stdout %q", code, ExitFailure, out)
	}
	lines := jsonLines(t, errb.String())
	var klogged, fatal bool
	for _, l := range lines {
		switch {
		case l["msg"] == "Unexpected error when reading response body":
			klogged = l["level"] == "ERROR" && l["logger"] == "klog" && strings.Contains(l["err"].(string), "unexpected EOF")
		case l["msg"] == "incumbent failed":
			fatal = l["level"] == "ERROR" && l["exit_code"] == float64(ExitFailure) &&
				strings.Contains(l["err"].(string), "unexpected error when reading response body")
		}
	}
	if !klogged || !fatal {
		t.Errorf("want client-go's klog error and the fatal error as JSON records (klog %v, fatal %v); stderr:\n%s", klogged, fatal, errb)
	}
}

func TestFatalErrorIsJSONInJSONModeAndPlainInTextMode(t *testing.T) {
	dir := t.TempDir()
	missing := []string{"status", "--backend", "file", "--file-dir", dir, "--lease", "db"}
	badTiming := []string{"run", "--backend", "file", "--file-dir", dir, "--lease", "db", "--lease-duration", "0s"}
	for _, c := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"failure", missing, ExitFailure, "does not exist"},
		{"usage", badTiming, ExitUsage, "--lease-duration must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _, errb := fakeEnv(t, nil, append(c.args, "--log-format", "json")...)
			if code := Main(context.Background(), *e); code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			lines := jsonLines(t, errb.String())
			if len(lines) == 0 {
				t.Fatalf("no log line; stderr %q", errb)
			}
			last := lines[len(lines)-1]
			if last["level"] != "ERROR" || last["msg"] != "incumbent failed" || last["exit_code"] != float64(c.code) ||
				!strings.Contains(last["err"].(string), c.err) {
				t.Errorf("fatal record %v, want level ERROR, msg \"incumbent failed\", exit_code %d and err with %q", last, c.code, c.err)
			}

			e, _, errb = fakeEnv(t, nil, append(c.args, "--log-format", "text")...)
			if code := Main(context.Background(), *e); code != c.code {
				t.Errorf("text: exit %d, want %d", code, c.code)
			}
			if !strings.HasPrefix(errb.String(), "incumbent: ") || !strings.Contains(errb.String(), c.err) {
				t.Errorf("text mode: want a plain \"incumbent: ...\" line, got %q", errb)
			}
		})
	}
}

// lineWriter is a stderr that tests can wait on: it keeps every line
// written and wakes waiters at each write.
type lineWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLineWriter() *lineWriter { return &lineWriter{changed: make(chan struct{})} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return n, err
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until a written line contains s.
func (w *lineWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		found, changed := strings.Contains(w.buf.String(), s), w.changed
		w.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line with %q within 10s; got:\n%s", s, w.String())
		}
	}
}

// TestRunLogsDurationsAsDurations runs the sidecar on a lease file in JSON
// mode: its timing settings must read "3s" and "500ms", not nanoseconds.
func TestRunLogsDurationsAsDurations(t *testing.T) {
	e, _, _ := fakeEnv(t, nil, "run", "--backend", "file", "--file-dir", t.TempDir(), "--lease", "db",
		"--identity", "a", "--http-addr", "", "--log-format", "json",
		"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms", "--grace", "500ms")
	stderr := newLineWriter()
	e.Stderr = stderr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Main(ctx, *e) }()
	stderr.waitFor(t, `"msg":"incumbent starting"`)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after the context ended, want 0", code)
	}
	var starting map[string]any
	for _, l := range jsonLines(t, stderr.String()) {
		if l["msg"] == "incumbent starting" {
			starting = l
		}
	}
	for key, want := range map[string]string{"lease_duration": "3s", "renew_deadline": "2s", "retry_period": "500ms", "grace": "500ms"} {
		if got := starting[key]; got != want {
			t.Errorf("%s = %#v, want %q", key, got, want)
		}
	}
}
