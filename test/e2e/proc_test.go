package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wait bounds every wait of these tests for something that should happen.
const wait = 30 * time.Second

// proc is one running incumbent process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	logs    []map[string]any // decoded JSON log lines of stderr
	raw     []string         // every line of stdout and stderr
	changed chan struct{}    // closed and replaced at each new line
	exited  chan struct{}
	code    int
}

// timings are short, valid for election.Config.Validate:
// 2s*1.01 + 0.5s < 3s*0.99.
var fastTimings = []string{"--lease-duration=3s", "--renew-deadline=2s", "--retry-period=500ms", "--grace=500ms"}

// start runs the incumbent binary with args. extraEnv is added to a minimal
// environment (PATH and HOME only, so that nothing of the host leaks in).
// Many sidecars run on this one machine: each `run` gets a control endpoint
// on a free port of its own unless args name one.
func start(t *testing.T, name string, extraEnv []string, args ...string) *proc {
	t.Helper()
	args = ownControlPort(args)
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + workDir, "GORACE=atexit_sleep_ms=0"}, extraEnv...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Go(func() { p.read(stdout, false) })
	readers.Go(func() { p.read(stderr, true) })
	go func() {
		readers.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		}
		p.mu.Unlock()
		_ = err
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- output of %s:\n%s", p.name, strings.Join(p.raw, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

// ownControlPort adds --control-addr=127.0.0.1:0 to a run invocation that
// names no control address (before any -- and its command).
func ownControlPort(args []string) []string {
	if len(args) == 0 || args[0] != "run" {
		return args
	}
	end := len(args)
	for i, a := range args {
		if a == "--" {
			end = i
			break
		}
		if strings.HasPrefix(a, "--control-addr") {
			return args
		}
	}
	out := append(append([]string(nil), args[:end]...), "--control-addr=127.0.0.1:0")
	return append(out, args[end:]...)
}

func (p *proc) read(r io.Reader, isStderr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.raw = append(p.raw, line)
		if isStderr {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				p.logs = append(p.logs, m)
			}
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// waitLog waits for a JSON log line matching match and returns it.
func (p *proc) waitLog(what string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.After(wait)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.logs); seen++ {
			if match(p.logs[seen]) {
				l := p.logs[seen]
				p.mu.Unlock()
				return l
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			p.t.Fatalf("%s exited (code %d) before logging %s", p.name, p.exitCode(), what)
		case <-deadline:
			p.t.Fatalf("%s did not log %s within %v", p.name, what, wait)
		}
	}
}

// waitLogs waits until n JSON log lines match match, and returns the n-th.
func (p *proc) waitLogs(what string, n int, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	count := 0 // waitLog looks at each line once, in order
	return p.waitLog(what, func(m map[string]any) bool {
		if match(m) {
			count++
		}
		return count >= n
	})
}

// logCount counts the JSON log lines so far that match match.
func (p *proc) logCount(match func(map[string]any) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.logs {
		if match(l) {
			n++
		}
	}
	return n
}

// msg matches a log line by its message.
func msg(m string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == m }
}

// statusAddr is the bound address of the status API, from the log.
func (p *proc) statusAddr() string {
	p.t.Helper()
	return p.waitLog("the status API address", msg("status API listening"))["addr"].(string)
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(wait):
		p.t.Fatalf("%s did not exit within %v", p.name, wait)
	}
	return p.exitCode()
}

func (p *proc) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// output is everything the process printed so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.raw, "\n")
}

// runCLI runs one short incumbent command and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, extraEnv []string, args ...string) (int, string, string) {
	t.Helper()
	return runProgram(t, bin, extraEnv, args...)
}

// runProgram is runCLI for the binary at path: a link to it under another
// name, say.
func runProgram(t *testing.T, path string, extraEnv []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + workDir, "GORACE=atexit_sleep_ms=0"}, extraEnv...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("incumbent %v did not finish within %v", args, wait)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// eventually polls cond until it holds, up to the package's deadline.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last state: %s", what, wait, state)
		}
		time.Sleep(25 * time.Millisecond) // poll interval of a bounded wait
	}
}
