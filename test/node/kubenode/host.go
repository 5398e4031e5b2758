//go:build node

package kubenode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The host settings that the kubelet, containerd and the bridge plugin
// change: each is saved before the node starts and written back at teardown.
var hostSysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
}

// The host folders that the kubelet, containerd or the CNI plugins create
// outside the node's own folder (their paths are built in); each one that
// did not exist before the node started is removed at teardown.
var hostPaths = []string{
	"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni",
	"/run/containerd", "/opt/containerd", "/etc/cni",
}

// The cgroup that the kubelet creates in every hierarchy.
const kubepodsCgroup = "kubepods"

// hostState is what teardown needs to undo, kept in a file in the node's
// folder so that a run interrupted before its teardown (SIGKILL, a test
// binary's timeout) is undone by the next one.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	Created []string          `json:"created"` // host folders absent before
	Bridge  string            `json:"bridge"`
	Rule    []string          `json:"rule"` // the iptables FORWARD rule, without -I/-D
}

func statePath(dir string) string { return filepath.Join(dir, "host-state.json") }

// saveHost records the host's current settings, before anything changes them.
func saveHost(dir, bridge string) (*hostState, error) {
	s := &hostState{Sysctls: map[string]string{}, Bridge: bridge,
		Rule: []string{"FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"}}
	for _, k := range hostSysctls {
		v, err := readSysctl(k)
		if err != nil {
			return nil, err
		}
		s.Sysctls[k] = v
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			s.Created = append(s.Created, p)
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return s, os.WriteFile(statePath(dir), b, 0o600)
}

func sysctlPath(k string) string { return "/proc/sys/" + strings.ReplaceAll(k, ".", "/") }

func readSysctl(k string) (string, error) {
	b, err := os.ReadFile(sysctlPath(k))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", k, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// restoreSysctls writes the saved values back.
func (s *hostState) restoreSysctls() error {
	var errs []error
	for k, v := range s.Sysctls {
		if cur, err := readSysctl(k); err == nil && cur == v {
			continue
		}
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

// addForwardDrop keeps pod traffic inside the bridge: nothing from the
// bridge is forwarded to another interface.
func (s *hostState) addForwardDrop() error {
	out, err := exec.Command("iptables", append([]string{"-I"}, s.Rule...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -I %s: %w: %s", strings.Join(s.Rule, " "), err, out)
	}
	return nil
}

// undo reverts everything hostState records, given that every process of
// the node has stopped and dir's mounts are gone. It is idempotent.
func (s *hostState) undo() error {
	var errs []error
	for range 10 { // the rule, as many times as an interrupted run may have added it
		if exec.Command("iptables", append([]string{"-D"}, s.Rule...)...).Run() != nil {
			break
		}
	}
	if s.Bridge != "" {
		if _, err := os.Stat("/sys/class/net/" + s.Bridge); err == nil {
			if out, err := exec.Command("ip", "link", "del", s.Bridge).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", s.Bridge, err, out))
			}
		}
	}
	if err := removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range s.Created {
		if err := unmountUnder(p); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if err := s.restoreSysctls(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanLeftovers undoes what a run that ended without its teardown left in
// dir and on the host: its processes, mounts, cgroups, bridge, rule and
// settings. A folder without a state file has nothing to undo but itself.
func cleanLeftovers(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	killProcs(dir)
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if b, err := os.ReadFile(statePath(dir)); err == nil {
		var s hostState
		if err := json.Unmarshal(b, &s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", statePath(dir), err))
		} else if err := s.undo(); err != nil {
			errs = append(errs, err)
		} else if left := s.residue(dir); len(left) > 0 {
			errs = append(errs, fmt.Errorf("still left: %s", strings.Join(left, "; ")))
		}
	}
	// What could not be undone stays recorded (and mounted folders stay
	// unwalked) for a later run, or a person, to finish.
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubenode: clean up the run left in %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("kubenode: clean up the run left in %s: %w", dir, err)
	}
	return nil
}

// killProcs kills every container process of the node (the processes in the
// kubepods cgroups) and every node process (nodeProcs).
func killProcs(dir string) {
	for range 5 {
		pids := append(podProcs(), nodeProcs(dir)...)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(pids, 10*time.Second)
	}
}

// nodeProcs lists the node's own processes: those running one of the
// node's programs (etcd and the Kubernetes binaries from the build cache,
// containerd, its shims, runc) with an argument that is a path under dir.
// A shell or an editor that merely names such a path is not one of them.
func nodeProcs(dir string) []int {
	var pids []int
	for _, pid := range allPids() {
		if pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !isNodeProgram(exe) {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, arg := range strings.Split(string(cmd), "\x00") {
			if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(v, dir+"/") || strings.HasPrefix(arg, dir+"/") {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// isNodeProgram reports whether exe is a program the node runs.
func isNodeProgram(exe string) bool {
	switch exe {
	case "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc":
		return true
	}
	switch filepath.Base(exe) {
	case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet":
		return strings.Contains(exe, "/incumbent/testbin/") || strings.HasPrefix(exe, os.Getenv("INCUMBENT_TESTBIN_CACHE"))
	}
	return false
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone waits until none of pids exists (or is a zombie), up to d.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err == nil && !strings.Contains(string(st), ") Z ") {
				alive = true
				break
			}
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling /proc: no event to wait on
	}
}

// cgroupRoots returns the kubepods folder of each cgroup hierarchy (v1) or of
// the unified one.
func cgroupRoots() []string {
	var roots []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if p := filepath.Join("/sys/fs/cgroup", kubepodsCgroup); isDir(p) {
			roots = append(roots, p)
		}
		return roots
	}
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		if p := filepath.Join("/sys/fs/cgroup", e.Name(), kubepodsCgroup); isDir(p) {
			roots = append(roots, p)
		}
	}
	return roots
}

// podProcs lists the processes in the kubepods cgroups.
func podProcs() []int {
	var pids []int
	for _, root := range cgroupRoots() {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the kubepods cgroups, deepest first.
func removeCgroups() error {
	var errs []error
	for _, root := range cgroupRoots() {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	var errs []error
	for range 5 {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		var points []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			mp := unescapeMount(f[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
		if len(points) == 0 {
			return nil
		}
		slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
		errs = errs[:0]
		for _, mp := range points {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// residue lists what of the node is still on the host: processes, mounts,
// cgroups, the bridge, the iptables rule, host folders it created, and
// settings that differ from the saved ones. Empty after a clean teardown.
func (s *hostState) residue(dir string) []string {
	var left []string
	for _, pid := range nodeProcs(dir) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		left = append(left, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	for _, pid := range podProcs() {
		left = append(left, fmt.Sprintf("process %d in a kubepods cgroup", pid))
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				mp := unescapeMount(f[4])
				for _, p := range append([]string{dir}, s.Created...) {
					if mp == p || strings.HasPrefix(mp, p+"/") {
						left = append(left, "mount "+mp)
					}
				}
			}
		}
	}
	for _, root := range cgroupRoots() {
		left = append(left, "cgroup "+root)
	}
	if _, err := os.Stat("/sys/class/net/" + s.Bridge); err == nil {
		left = append(left, "network interface "+s.Bridge)
	}
	if exec.Command("iptables", append([]string{"-C"}, s.Rule...)...).Run() == nil {
		left = append(left, "iptables rule "+strings.Join(s.Rule, " "))
	}
	for _, p := range s.Created {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "folder "+p)
		}
	}
	for k, v := range s.Sysctls {
		if cur, err := readSysctl(k); err != nil || cur != v {
			left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", k, cur, v))
		}
	}
	slices.Sort(left)
	return left
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// foreignKubernetes reports what on the host suggests a Kubernetes node
// that is not this tier's (a kubepods cgroup, /var/lib/kubelet), or a route
// that the pod subnet would take over. Called when no state file of ours
// accounts for them.
func foreignKubernetes() error {
	var found []string
	for _, root := range cgroupRoots() {
		found = append(found, "cgroup "+root)
	}
	if _, err := os.Stat("/var/lib/kubelet"); err == nil {
		found = append(found, "folder /var/lib/kubelet")
	}
	// Any route to the 10.244.0.0/16 the pods route to (flannel's default
	// pod network is that /16).
	if out, err := exec.Command("ip", "-4", "route", "show", "root", podRoutes).Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				found = append(found, "route "+line)
			}
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("kubenode: this host seems to run Kubernetes or a pod network already (%s): the tier would kill its pods and take over its paths; run it on a machine of its own", strings.Join(found, "; "))
	}
	return nil
}
