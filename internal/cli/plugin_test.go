package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// As kubectl-incumbent the help says "kubectl incumbent"; as
// kubectl_complete-incumbent it answers completion requests.
func TestKubectlPluginNames(t *testing.T) {
	e, out, _ := fakeEnv(t, nil, "status", "--help")
	e.Program = KubectlPlugin
	if code := Main(context.Background(), *e); code != ExitOK || !strings.Contains(out.String(), "kubectl incumbent status [--lease NAME]") {
		t.Errorf("kubectl-incumbent status --help: exit %d\n%s", code, out)
	}
	e, out, _ = fakeEnv(t, nil, "--help")
	e.Program = KubectlPlugin
	if code := Main(context.Background(), *e); code != ExitOK || !strings.Contains(out.String(), `Use "kubectl incumbent [command] --help"`) ||
		!strings.Contains(out.String(), "completion") {
		t.Errorf("kubectl-incumbent --help: exit %d\n%s", code, out)
	}
	e, _, errb := fakeEnv(t, nil, "frobnicate")
	e.Program = KubectlPlugin
	if code := Main(context.Background(), *e); code != ExitUsage || !strings.Contains(errb.String(), "Run 'kubectl incumbent --help'") {
		t.Errorf("kubectl-incumbent frobnicate: exit %d, %q", code, errb)
	}
	// kubectl asks the completion of `kubectl incumbent sta`.
	e, out, _ = fakeEnv(t, nil, "sta")
	e.Program = KubectlComplete
	if code := Main(context.Background(), *e); code != ExitOK || !strings.HasPrefix(out.String(), "status\t") {
		t.Errorf("kubectl_complete-incumbent sta: exit %d, %q", code, out)
	}
	// Any other name is plain incumbent.
	e, out, _ = fakeEnv(t, nil, "status", "--help")
	e.Program = "incumbent-v2"
	if code := Main(context.Background(), *e); code != ExitOK || !strings.Contains(out.String(), "  incumbent status [--lease NAME]") {
		t.Errorf("incumbent-v2 status --help: exit %d\n%s", code, out)
	}
}

// The completion command is there, for bash, zsh and fish.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		e, out, errb := fakeEnv(t, nil, "completion", shell)
		if code := Main(context.Background(), *e); code != ExitOK || !strings.Contains(out.String(), "__complete") {
			t.Errorf("completion %s: exit %d, %s\n%.300s", shell, code, errb, out)
		}
	}
}

// Completion without a cluster offers nothing, and says nothing but
// cobra's directive.
func TestLeaseCompletionWithoutACluster(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	e, out, errb := fakeEnv(t, map[string]string{"KUBECONFIG": kc}, "__complete", "status", "--lease", "")
	if code := Main(context.Background(), *e); code != ExitOK || out.String() != ":4\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want only the no-file directive", code, out, errb)
	}
}
