package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// footprintResult is the idle cost of one sidecar process.
type footprintResult struct {
	role   string
	rssMiB float64
	cpuPct float64 // of one core
}

// footprint builds the incumbent binary as it is released, runs an idle
// leader and an idle follower with default timings and the status API on,
// and reads their memory and CPU from /proc over window.
func footprint(admin *rest.Config, ns string, window time.Duration) (binMiB float64, out []footprintResult, err error) {
	dir, err := os.MkdirTemp("", "incumbent-bench-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "incumbent")
	// As hack/internal/dist builds the release binaries and the image
	// (less its reproducibility flags, which change no code).
	build := exec.Command("go", "build", "-trimpath", "-tags="+buildinfo.ReleaseTags, "-ldflags=-s -w", "-o", bin, "./cmd/incumbent")
	build.Dir, build.Stderr = moduleRoot(), os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		return 0, nil, fmt.Errorf("build incumbent: %w", err)
	}
	if fi, err := os.Stat(bin); err == nil {
		binMiB = float64(fi.Size()) / (1 << 20)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(admin, ns, kubeconfig); err != nil {
		return 0, nil, err
	}
	lease := fmt.Sprintf("bench-footprint-%d", time.Now().UnixNano()%100000)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	for i, role := range []string{"leader", "follower"} {
		// The status API on a port of its own (the default 127.0.0.1:4040
		// is one per machine); no control endpoint, as outside a pod.
		cmd := exec.Command(bin, "run", "--kubeconfig", kubeconfig, "-n", ns, "--lease", lease,
			"--identity", role, "--http-addr", "127.0.0.1:0", "--control-addr", "", "--log-format", "json")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return 0, nil, err
		}
		if err := cmd.Start(); err != nil {
			return 0, nil, err
		}
		procs = append(procs, cmd)
		if i == 0 {
			// The first one leads: wait for it to say so.
			if err := waitLine(stderr, "started leading", 30*time.Second); err != nil {
				return 0, nil, fmt.Errorf("footprint leader: %w", err)
			}
		}
		go drain(stderr)
	}
	time.Sleep(3 * time.Second) // let start-up settle before the idle window
	var before []procStat
	for _, p := range procs {
		s, err := readProc(p.Process.Pid)
		if err != nil {
			return 0, nil, err
		}
		before = append(before, s)
	}
	time.Sleep(window)
	for i, p := range procs {
		s, err := readProc(p.Process.Pid)
		if err != nil {
			return 0, nil, err
		}
		cpu := float64(s.ticks-before[i].ticks) / 100 / s.at.Sub(before[i].at).Seconds() * 100
		out = append(out, footprintResult{role: []string{"leader", "follower"}[i], rssMiB: float64(s.rssKB) / 1024, cpuPct: cpu})
	}
	return binMiB, out, nil
}

// writeKubeconfig writes a kubeconfig for cfg's server and credentials,
// with namespace ns, to path.
func writeKubeconfig(cfg *rest.Config, ns, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bench"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["bench"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench", Namespace: ns}
	kc.CurrentContext = "bench"
	return clientcmd.WriteToFile(*kc, path)
}

type procStat struct {
	rssKB, ticks int64
	at           time.Time
}

// readProc reads a process's resident memory and CPU ticks (USER_HZ, 100 on
// Linux) from /proc.
func readProc(pid int) (procStat, error) {
	if runtime.GOOS != "linux" {
		return procStat{}, fmt.Errorf("footprint needs Linux /proc")
	}
	var s procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || s.rssKB == 0 {
		return s, fmt.Errorf("cannot parse /proc/%d", pid)
	}
	s.ticks, s.at = utime+stime, time.Now()
	return s, nil
}

func waitLine(r interface{ Read([]byte) (int, error) }, substr string, limit time.Duration) error {
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), substr) {
				found <- nil
				return
			}
		}
		found <- fmt.Errorf("output ended before %q", substr)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	select {
	case err := <-found:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no %q within %v", substr, limit)
	}
}

func drain(r interface{ Read([]byte) (int, error) }) {
	buf := make([]byte, 4096)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// moduleRoot is the folder of go.mod, found from this source file.
func moduleRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(self))
}
