package chaos_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// sidecar is one run of `incumbent run -- child`, in a process group of its
// own, killed by the kernel if the test process dies.
type sidecar struct {
	name    string
	pid     int
	logPath string
	exited  chan struct{} // closed once reaped
	ready   chan struct{} // closed when it logged that the election starts
	drained chan struct{} // closed when its output (and its children's) ended

	mu       sync.Mutex
	state    *os.ProcessState
	expected bool     // the harness ended it on purpose
	tail     []string // its last lines of output
	races    int      // data races the race detector reported in it
}

// startSidecar runs bin with args and env. Its output, and its children's,
// goes to logPath. The forking goroutine keeps its OS thread until the
// process is reaped, because Linux sends the parent-death signal when that
// thread ends.
func startSidecar(name, logPath string, env, args []string) (*sidecar, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	s := &sidecar{name: name, logPath: logPath, exited: make(chan struct{}), ready: make(chan struct{}), drained: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		err := cmd.Start()
		w.Close() // the children hold their own copies
		if err != nil {
			started <- err
			return
		}
		s.pid = cmd.Process.Pid
		started <- nil
		_ = cmd.Wait() // the exit status is in ProcessState
		s.mu.Lock()
		s.state = cmd.ProcessState
		s.mu.Unlock()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		r.Close()
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go s.read(r, logf)
	return s, nil
}

// read copies the output to the log file, keeps its tail, counts data
// races and closes ready at the log line that follows the preflight.
func (s *sidecar) read(r *os.File, logf *os.File) {
	defer close(s.drained)
	defer logf.Close()
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		var rec struct {
			Msg string `json:"msg"`
		}
		if !isReady && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "incumbent starting" {
			isReady = true
			close(s.ready)
		}
		s.mu.Lock()
		if strings.Contains(line, "WARNING: DATA RACE") {
			s.races++
		}
		s.tail = append(s.tail, line)
		if len(s.tail) > 40 {
			s.tail = s.tail[len(s.tail)-40:]
		}
		s.mu.Unlock()
	}
}

// alive reports whether the process has not been reaped yet.
func (s *sidecar) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// isReady reports whether it got past its startup checks.
func (s *sidecar) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// signalGroup sends sig to the sidecar's process group, unless it has been
// reaped (its group ID could then be reused).
func (s *sidecar) signalGroup(sig syscall.Signal) error {
	if !s.alive() {
		return fmt.Errorf("%s has exited", s.name)
	}
	if err := syscall.Kill(-s.pid, sig); err != nil {
		return fmt.Errorf("signal %v to the group of %s (pid %d): %w", sig, s.name, s.pid, err)
	}
	return nil
}

// expect marks the coming exit as the harness's doing.
func (s *sidecar) expect() {
	s.mu.Lock()
	s.expected = true
	s.mu.Unlock()
}

// outcome describes how it exited, and whether that was expected.
func (s *sidecar) outcome() (desc string, expected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return "running", s.expected
	}
	if ws, ok := s.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + ws.Signal().String(), s.expected
	}
	return "exit code " + strconv.Itoa(s.state.ExitCode()), s.expected
}

func (s *sidecar) exitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return -1
	}
	return s.state.ExitCode()
}

func (s *sidecar) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

func (s *sidecar) raceCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.races
}

// procInfo is what /proc says about a process.
type procInfo struct {
	exists bool
	state  byte // R, S, T (stopped), Z (zombie), ...
	ppid   int
	exe    string
}

// gone reports whether the process no longer runs (absent or a zombie).
func (p procInfo) gone() bool { return !p.exists || p.state == 'Z' || p.state == 'X' }

// inspect reads /proc/pid/stat and /proc/pid/exe.
func inspect(pid int) procInfo {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procInfo{}
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return procInfo{}
	}
	ppid, _ := strconv.Atoi(f[1])
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return procInfo{exists: true, state: f[0][0], ppid: ppid, exe: exe}
}
