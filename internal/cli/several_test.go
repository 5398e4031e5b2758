package cli

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// --lease takes several names, comma-separated or repeated, from the
// command line or INCUMBENT_LEASE; a name given twice or an empty one is
// refused.
func TestLeaseFlagTakesSeveral(t *testing.T) {
	for _, c := range []struct {
		vars map[string]string
		args []string
		want []string
	}{
		{nil, []string{"--lease=a"}, []string{"a"}},
		{nil, []string{"--lease=a,b", "--lease", "c"}, []string{"a", "b", "c"}},
		{nil, []string{"--lease= a , b"}, []string{"a", "b"}},
		{map[string]string{"INCUMBENT_LEASE": "x,y,z"}, nil, []string{"x", "y", "z"}},
		{map[string]string{"INCUMBENT_LEASE": "x,y"}, []string{"--lease=a"}, []string{"a"}},
	} {
		e, _, _ := fakeEnv(t, c.vars)
		e.defaults()
		cmd, o := runCommand(e)
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(cmd, e.Getenv); err != nil {
			t.Fatal(err)
		}
		if got := o.leaseNames(); !slices.Equal(got, c.want) || o.lease != c.want[0] {
			t.Errorf("%v %v: leases %q (first %q), want %q", c.vars, c.args, got, o.lease, c.want)
		}
		if got := cmd.Flags().Lookup("lease").Value.String(); got != strings.Join(c.want, ",") {
			t.Errorf("%v %v: the flag's value reads %q", c.vars, c.args, got)
		}
	}
	for arg, want := range map[string]string{"--lease=a,a": `lease "a" is named twice`, "--lease=a,,b": `an empty lease name in "a,,b"`} {
		cmd, _ := runCommand(&Env{})
		if err := cmd.ParseFlags([]string{arg}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", arg, err, want)
		}
	}
}

// What acts on one lease refuses several, naming why: the operator
// commands, and the modes of run that act on one workload.
func TestOneLeaseOnly(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--backend=file", "--lease=a,b"}, "names 2 leases (a, b), and incumbent status acts on one"},
		{[]string{"watch", "--backend=file", "--lease=a", "--lease=b"}, "and incumbent watch acts on one"},
		{[]string{"release", "--backend=file", "--lease=a,b"}, "and incumbent release acts on one"},
		{[]string{"transfer", "--backend=file", "--lease=a,b", "--to=x"}, "and incumbent transfer acts on one"},
		{[]string{"fence", "--lease=a,b", "-n", "ns", "--service-account=sa", "--resource=core/configmaps"}, "and incumbent fence acts on one"},
		{[]string{"run", "--backend=file", "--lease=a,b", "--", "true"}, "a command after -- (exec mode) is one workload"},
		{[]string{"run", "--backend=file", "--lease=a,b", "--leader-addr=127.0.0.1:0"}, "--leader-addr is one port"},
		{[]string{"run", "--backend=file", "--lease=a,b", "--label-pod"}, "--label-pod labels the pod leader or follower of one lease"},
		{[]string{"rbac", "--lease=a,b", "-n", "ns", "--service-account=sa", "--label-pod"}, "--label-pod: it takes one lease"},
		{[]string{"inject", "--lease=a,b", "--mode=labels"}, "--mode labels takes one lease, and --lease names 2 (a, b)"},
		{[]string{"inject", "--lease=a,b", "--mode=exec"}, "--mode exec takes one lease"},
		{[]string{"inject", "--lease=a,b", "--mode=leader-port"}, "--mode leader-port takes one lease"},
		{[]string{"inject", "--lease=a,b", "--policy", "-n", "ns"}, "an admission policy selects Pods by their incumbent.io/lease label, which holds one lease name"},
	} {
		e, _, errb := fakeEnv(t, nil, c.args...)
		e.Stdin = strings.NewReader(injectApp)
		if code := Main(context.Background(), *e); code != ExitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, errb, c.want)
		}
	}
}

// inject writes a status-mode sidecar of several leases: one --lease of
// them all, a Role naming each, objects named after the first.
func TestInjectSeveralLeases(t *testing.T) {
	code, out, errb := runInject(t, injectApp, "--lease=web-a,web-b,web-c")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, want := range []string{"- --lease=web-a,web-b,web-c\n", `resourceNames: ["web-a", "web-b", "web-c"]`,
		`verbs: ["list", "watch"]`, `name: "incumbent-web-a"`, "incumbent.io/lease: web-a"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if again, out2, _ := runInject(t, out, "--lease=web-a,web-b,web-c"); again != ExitOK || out2 != out {
		t.Errorf("injecting the output again: exit %d, changed:\n%s", again, out2)
	}
}
