package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const injectApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: registry.example/app:1
          command: [/app]
          ports: [{name: http, containerPort: 8080}]
`

// runInject runs incumbent inject with stdin and returns its exit code,
// standard output and standard error.
func runInject(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	e, out, errb := fakeEnv(t, nil, append([]string{"inject"}, args...)...)
	e.Stdin = strings.NewReader(stdin)
	e.Version = "v1.2.3"
	code := Main(context.Background(), *e)
	return code, out.String(), errb.String()
}

// TestInjectCommand: incumbent inject reads standard input or -f (a file, a
// folder), writes the injected stream, names this version's image, checks
// the flags meant for incumbent run as run does, and refuses bad input
// with exit code 2 and the reason.
func TestInjectCommand(t *testing.T) {
	code, out, errb := runInject(t, injectApp, "--lease=web")
	if code != ExitOK || !strings.Contains(out, "image: ghcr.io/incumbent-io/incumbent:v1.2.3\n") || !strings.Contains(out, "- --lease=web\n") {
		t.Fatalf("stdin: exit %d, stderr %q\n%s", code, errb, out)
	}
	if again, out2, _ := runInject(t, out, "--lease=web"); again != ExitOK || out2 != out {
		t.Errorf("injecting the output again: exit %d, changed:\n%s", again, out2)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(injectApp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not YAML: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "app.yaml"), dir} {
		if code, got, errb := runInject(t, "", "--lease=web", "-f", f); code != ExitOK || got != out {
			t.Errorf("-f %s: exit %d, stderr %q\n%s", f, code, errb, got)
		}
	}

	// The label mode records events unless told not to, and the Role says so.
	_, out, _ = runInject(t, injectApp, "--lease=web", "--mode=labels")
	if !strings.Contains(out, "- --events\n") || !strings.Contains(out, `resources: ["events"]`) {
		t.Errorf("labels: no events:\n%s", out)
	}
	// Without --events, the Role keeps only the optional create on events
	// that reports a refused permission on the pod.
	_, out, _ = runInject(t, injectApp, "--lease=web", "--mode=labels", "--events=false")
	if strings.Contains(out, "- --events\n") || strings.Contains(out, "# --events:") ||
		strings.Count(out, `resources: ["events"]`) != 1 || !strings.Contains(out, "# Record a PermissionDenied Warning event") {
		t.Errorf("labels --events=false: events, or no optional rule for refusals:\n%s", out)
	}
	// Flags for incumbent run, after --.
	_, out, _ = runInject(t, injectApp, "--lease=web", "--", "--grace=2s", "--health-url=http://127.0.0.1:8080/healthz")
	if !strings.Contains(out, "- --grace=2s\n") || !strings.Contains(out, "- --health-url=http://127.0.0.1:8080/healthz\n") {
		t.Errorf("run flags not passed:\n%s", out)
	}
	_, out, _ = runInject(t, injectApp, "--lease=web", "--mode=exec", "--", "--on-child-exit=restart")
	if !strings.Contains(out, "- --on-child-exit=restart\n") {
		t.Errorf("exec: --on-child-exit not passed:\n%s", out)
	}
	// --policy prints the admission policy.
	code, out, errb = runInject(t, "", "--lease=web", "--policy", "-n", "prod")
	if code != ExitOK || !strings.Contains(out, "kind: MutatingAdmissionPolicy\n") || !strings.Contains(out, "namespace: \"prod\"") {
		t.Errorf("--policy: exit %d, stderr %q\n%s", code, errb, out)
	}

	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{injectApp, []string{"--mode=exec", "--lease=web", "--workload=nope"}, "no workload nope in the input (its workloads: Deployment/web)"},
		{strings.Replace(injectApp, "    spec:\n", "    spec:\n      hostNetwork: true\n", 1), []string{"--lease=web"}, "runs on the host's network"},
		{"a: [", []string{"--lease=web"}, "stdin: document 1 is not valid YAML"},
		{injectApp, []string{}, "--lease is required"},
		{injectApp, []string{"--lease=web", "--rbac=somewhere"}, `unknown --rbac "somewhere"`},
		{injectApp, []string{"--lease=web", "-f", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file"},
		{injectApp, []string{"--lease=web", "stray"}, `unexpected argument "stray": files are read with -f`},
		{injectApp, []string{"--lease=web", "--", "--grace=20s"}, "timing flags (--lease-duration 15s, --renew-deadline 10s, --retry-period 2s, --grace 20s)"},
		{injectApp, []string{"--lease=web", "--", "--http-addr=:1"}, "--http-addr after -- is written by inject: use inject's --http-port"},
		{injectApp, []string{"--lease=web", "--", "--backend=file"}, "--backend after -- is not for the sidecar inject writes"},
		{injectApp, []string{"--lease=web", "--", "--on-child-exit=exit"}, "--on-child-exit after -- is not for the sidecar"},
		{injectApp, []string{"--lease=web", "--", "--no-such-flag"}, "the flags after -- are for incumbent run: unknown flag: --no-such-flag"},
		{injectApp, []string{"--lease=web", "--", "run"}, `after --, only flags for incumbent run (got ["run"])`},
		{injectApp, []string{"--lease=web", "--", "--health-url=http://[::1"}, "--health-url"},
		{injectApp, []string{"--lease=web", "--mode=exec", "--", "--on-child-exit=later"}, "--on-child-exit"},
		{"", []string{"--lease=web", "--policy"}, "--policy needs the namespaces"},
		{"", []string{"--lease=web", "--policy", "-n", "prod", "-f", "x.yaml"}, "--policy reads no manifests"},
		{"", []string{"--lease=web", "--policy", "-n", "prod", "--mode=exec"}, "--mode exec rewrites a container's command"},
		{injectApp, []string{"--lease=web", "-n", "prod"}, "-n (or INCUMBENT_NAMESPACE) is for --policy"},
	} {
		code, out, errb := runInject(t, c.stdin, c.args...)
		if code != ExitUsage || !strings.Contains(errb, c.want) {
			t.Errorf("inject %q: exit %d, stderr %q, want exit 2 saying %q\n%s", c.args, code, errb, c.want, out)
		}
	}
}

// TestCopyBinary: copy-binary copies the running binary, executable by
// anyone, over what was there.
func TestCopyBinary(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "incumbent")
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, out, errb := fakeEnv(t, nil, "copy-binary", dst)
	if code := Main(context.Background(), *e); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || st.Mode().Perm() != 0o755 || !strings.Contains(out.String(), "copied ") {
		t.Errorf("copied %d bytes of %d, mode %v, said %q", len(got), len(want), st.Mode(), out)
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	e, _, errb = fakeEnv(t, nil, "copy-binary", filepath.Join(t.TempDir(), "no", "such", "dir", "x"))
	if code := Main(context.Background(), *e); code != ExitFailure || !strings.Contains(errb.String(), "copy-binary:") {
		t.Errorf("into a missing folder: exit %d, %q", code, errb)
	}
	e, _, errb = fakeEnv(t, nil, "copy-binary")
	if code := Main(context.Background(), *e); code != ExitUsage {
		t.Errorf("without a destination: exit %d, %q", code, errb)
	}
}
