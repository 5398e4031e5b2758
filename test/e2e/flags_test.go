package e2e

import (
	"strings"
	"testing"
)

// TestInvalidInvocationsExit2 runs the binary with bad flags, arguments and
// environment values: each must exit 2 with a message naming the problem.
func TestInvalidInvocationsExit2(t *testing.T) {
	kc := "--kubeconfig=" + kubeconfig
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"missing lease", nil, []string{"run", kc}, "--lease is required"},
		{"unknown flag", nil, []string{"run", "--lease=x", "--bogus"}, "unknown flag: --bogus"},
		{"bad duration", nil, []string{"run", "--lease=x", "--lease-duration=abc"}, `invalid argument "abc" for "--lease-duration"`},
		{"zero duration", nil, []string{"run", kc, "--lease=x", "--lease-duration=0s"}, "--lease-duration must be positive"},
		{"unsafe timings", nil, []string{"run", kc, "--lease=x", "--lease-duration=10s", "--renew-deadline=8s"},
			"(RenewDeadline + Grace)*(1+Drift) (12.12s) must be less than LeaseDuration*(1-Drift) (9.9s)"},
		{"retry too long", nil, []string{"run", kc, "--lease=x", "--retry-period=6s"}, "RetryPeriod (6s) must be at most half of RenewDeadline (10s)"},
		{"renew interval too long", nil, []string{"run", kc, "--lease=x", "--renew-interval=9s"},
			"--renew-interval 9s, --grace 4s): RenewInterval (9s) plus RetryPeriod (2s) must be at most RenewDeadline (10s)"},
		{"negative renew interval", nil, []string{"run", kc, "--lease=x", "--renew-interval=-1s"}, "--renew-interval must be positive"},
		{"bad log format", nil, []string{"run", kc, "--lease=x", "--log-format=xml"}, `invalid --log-format "xml"`},
		{"bad log level", nil, []string{"run", kc, "--lease=x", "--log-level=loud"}, `invalid --log-level "loud"`},
		{"bad policy", nil, []string{"run", kc, "--lease=x", "--on-child-exit=sometimes", "--", "true"}, `unknown policy "sometimes"`},
		{"bad on-refused", nil, []string{"run", kc, "--lease=x", "--on-refused=later"}, `invalid argument "later" for "--on-refused" flag: want wait or exit`},
		{"bad on-refused env", []string{"INCUMBENT_ON_REFUSED=crash"}, []string{"run", kc, "--lease=x"},
			`invalid value "crash" in INCUMBENT_ON_REFUSED (for --on-refused)`},
		{"policy without command", nil, []string{"run", kc, "--lease=x", "--on-child-exit=exit"}, "--on-child-exit is for a command given after --"},
		{"unknown backend", nil, []string{"run", kc, "--lease=x", "--backend=zookeeper"}, `unknown --backend "zookeeper"`},
		{"bad env value", []string{"INCUMBENT_GRACE=soon"}, []string{"run", kc, "--lease=x"}, `invalid value "soon" in INCUMBENT_GRACE (for --grace)`},
		{"stray argument", nil, []string{"run", kc, "--lease=x", "serve"}, `unexpected argument "serve": put the command to run after --`},
		{"missing program", nil, []string{"run", kc, "--lease=x", "--", "/no/such/program"}, `command "/no/such/program"`},
		{"bad lease name", nil, []string{"run", kc, "--lease=Bad_Name"}, `invalid lease name "Bad_Name"`},
		{"bad http addr", nil, []string{"run", kc, "--lease=x", "--http-addr=nonsense"}, `invalid --http-addr "nonsense"`},
		{"same addrs", nil, []string{"run", kc, "--lease=x", "--http-addr=127.0.0.1:1", "--leader-addr=127.0.0.1:1"}, "--http-addr and --leader-addr must differ"},
		{"lease too long for a label", nil, []string{"run", kc, "--lease=" + strings.Repeat("a", 64), "--label-pod"}, "cannot be a label value"},
		{"no credentials", nil, []string{"run", "--lease=x"}, "no Kubernetes credentials"},
		{"bad kubeconfig", []string{"KUBECONFIG=/no/such/file"}, []string{"status", "--lease=x"}, "kubeconfig"},
		{"transfer without target", nil, []string{"transfer", kc, "--lease=x"}, "--to is required"},
		{"bad output", nil, []string{"status", kc, "--lease=x", "-o", "xml"}, `invalid --output "xml"`},
		{"rbac incomplete", nil, []string{"rbac", "--lease=x"}, "--lease, --namespace and --service-account are required"},
		{"labels need Kubernetes", nil, []string{"run", "--backend=file", "--lease=x", "--label-pod"}, `--label-pod works only with --backend kubernetes (the lease is in "file")`},
		{"events need Kubernetes", nil, []string{"run", "--backend=file", "--lease=x", "--events"}, `--events works only with --backend kubernetes`},
		{"rbac needs Kubernetes", nil, []string{"rbac", "--backend=file", "--lease=x"}, "rbac is Kubernetes-only: --backend file has no RBAC"},
		{"bad file lease name", nil, []string{"status", "--backend=file", "--file-dir=/tmp", "--lease=../x"}, `"../x"`},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"arguments to status", nil, []string{"status", kc, "--lease=x", "extra"}, "takes no arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, c.env, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("incumbent %q: exit %d, stderr:\n%s\nwant exit 2 and %q", c.args, code, stderr, c.want)
			}
			if strings.Contains(stderr, "panic") || strings.Count(strings.TrimSpace(stderr), "\n") > 2 {
				t.Errorf("the error is not short and clear:\n%s", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "incumbent ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
