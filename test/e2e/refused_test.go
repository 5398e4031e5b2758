package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// refusedSetup makes a namespace with the default Role of `incumbent rbac`
// for lease (which lets the sidecar record events), a service account
// bound to it, and a Pod object named pod (no kubelet runs it: the sidecar
// runs here, as that pod). It returns the service account's kubeconfig,
// the Role, and the pod.
func refusedSetup(t *testing.T, ns, lease, pod string) (string, *corev1.ServiceAccount, *rbacv1.Role, *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, doc, errOut := runCLI(t, nil, "rbac", "--lease="+lease, "-n", ns, "--service-account="+lease+"-sa")
	if code != 0 {
		t.Fatalf("incumbent rbac: exit %d: %s", code, errOut)
	}
	sa, role := applyRBAC(t, doc)
	createPod(t, ns, pod, nil)
	p, err := admin.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return saKubeconfig(t, sa), sa, role, p
}

// setLeaseUpdate grants or takes away verb "update" on the Lease in the
// Role, and waits until the authorizer sees it.
func setLeaseUpdate(t *testing.T, sa *corev1.ServiceAccount, full *rbacv1.Role, lease string, granted bool) {
	t.Helper()
	ctx := context.Background()
	r, err := admin.RbacV1().Roles(full.Namespace).Get(ctx, full.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Rules = nil
	for _, rule := range full.Rules {
		rule := *rule.DeepCopy()
		if !granted && rule.Resources[0] == "leases" {
			rule.Verbs = slices.DeleteFunc(rule.Verbs, func(v string) bool { return v == "update" })
		}
		if len(rule.Verbs) > 0 {
			r.Rules = append(r.Rules, rule)
		}
	}
	if _, err := admin.RbacV1().Roles(full.Namespace).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the authorizer sees the Role", func() (bool, string) {
		if got := allowed(t, sa, "update", "coordination.k8s.io", "leases", lease); got != granted {
			return false, "update allowed: " + map[bool]string{true: "yes", false: "no"}[got]
		}
		return allowed(t, sa, "get", "coordination.k8s.io", "leases", lease), "get not yet allowed"
	})
}

// namesRefusedUpdate matches a log line at error level whose error names
// the refused verb and resource.
func namesRefusedUpdate(l map[string]any) bool {
	s, _ := l["err"].(string)
	return l["level"] == "ERROR" && strings.Contains(s, `verb "update" on resource "leases"`)
}

// refusalEvents lists the PermissionDenied events on pod.
func refusalEvents(t *testing.T, pod *corev1.Pod) []corev1.Event {
	t.Helper()
	list, err := admin.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod.Name + ",reason=PermissionDenied"})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestRefusedPermissionAtStartupIsWaitedFor starts a sidecar whose Role
// lacks verb "update" on its Lease. Under the default --on-refused=wait it
// does not exit (no CrashLoopBackOff): it logs at error level which verb on
// which resource is refused, keeps retrying, says so on /healthz (200),
// /readyz (503) and /v1/status, and records one Warning Event on its pod
// (for kubectl describe), however often it retries. Once the Role is fixed
// the same process starts the election and leads, without a restart.
func TestRefusedPermissionAtStartupIsWaitedFor(t *testing.T) {
	const ns, lease, podName = "refused-startup", "rf", "rf-a"
	saKC, sa, role, pod := refusedSetup(t, ns, lease, podName)
	setLeaseUpdate(t, sa, role, lease, false)

	p := start(t, "rf-startup", []string{"POD_NAME=" + podName, "POD_NAMESPACE=" + ns, "POD_UID=" + string(pod.UID)},
		append([]string{"run", "--kubeconfig=" + saKC, "--lease=" + lease, "--http-addr=127.0.0.1:0", "--log-format=json"},
			fastTimings...)...)
	addr := p.statusAddr()
	pid := p.cmd.Process.Pid
	l := p.waitLog("the refused permission, at error level", namesRefusedUpdate)
	t.Logf("logged: %v: %v", l["msg"], l["err"])
	// Still waiting, not exited, after a second attempt.
	p.waitLogs("a second attempt", 2, namesRefusedUpdate)

	want := `verb "update" on resource "leases"`
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || !strings.Contains(body, want) {
		t.Errorf("/healthz while refused: %d %q; want 200 naming %s", code, body, want)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, want) {
		t.Errorf("/readyz while refused: %d %q; want 503 naming %s", code, body, want)
	}
	code, body := httpGet(t, "http://"+addr+"/v1/status")
	var st struct{ State, Reason string }
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 || st.State != "starting" || !strings.Contains(st.Reason, want) {
		t.Errorf("/v1/status while refused: %d %s (%v); want state starting and a reason naming %s", code, body, err, want)
	}
	eventually(t, "a Warning event on the pod naming the permission", func() (bool, string) {
		evs := refusalEvents(t, pod)
		if len(evs) == 0 {
			return false, "no PermissionDenied event"
		}
		ev := evs[0]
		ok := ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.UID == pod.UID && ev.InvolvedObject.Kind == "Pod" &&
			strings.Contains(ev.Message, want) && strings.Contains(ev.Message, "incumbent rbac --lease "+lease)
		return ok, ev.Type + " " + string(ev.InvolvedObject.UID) + " " + ev.Message
	})
	p.waitLogs("a third attempt", 3, namesRefusedUpdate)
	if evs := refusalEvents(t, pod); len(evs) != 1 || evs[0].Count != 1 {
		t.Errorf("%d PermissionDenied events after three attempts (%+v); want one, recorded once", len(evs), evs)
	}

	setLeaseUpdate(t, sa, role, lease, true)
	p.waitLog("the fix", msg("permissions granted: starting the election"))
	p.waitLog("leadership once the Role is fixed", msg("started leading"))
	if p.cmd.Process.Pid != pid {
		t.Errorf("pid %d, was %d", p.cmd.Process.Pid, pid)
	}
	if code, _ := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz once leading: %d; want 200", code)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM; want 0", code)
	}
}

// TestRefusedPermissionWhileLeadingIsRetried takes verb "update" away from
// a leader's Role: under --on-refused=wait the sidecar does not exit; it
// logs the refusal at error level, records it as an Event on its pod,
// steps down at its renew deadline (it can no longer renew), keeps trying
// to take the lease, and, once the permission is back, leads again in the
// same process.
func TestRefusedPermissionWhileLeadingIsRetried(t *testing.T) {
	const ns, lease, podName = "refused-running", "rr", "rr-a"
	saKC, sa, role, pod := refusedSetup(t, ns, lease, podName)
	p := start(t, "rr-running", []string{"POD_NAME=" + podName, "POD_NAMESPACE=" + ns, "POD_UID=" + string(pod.UID)},
		append([]string{"run", "--kubeconfig=" + saKC, "--lease=" + lease, "--http-addr=127.0.0.1:0", "--log-format=json"},
			fastTimings...)...)
	addr := p.statusAddr()
	p.waitLog("leadership", msg("started leading"))

	setLeaseUpdate(t, sa, role, lease, false)
	l := p.waitLog("the refused renewal, at error level", namesRefusedUpdate)
	t.Logf("logged: %v: %v", l["msg"], l["err"])
	p.waitLog("the step-down at the renew deadline", msg("stopped leading"))
	// Still refused, after the step-down: it keeps trying to take the
	// lease back, alive to a liveness probe, and no fix is claimed.
	p.waitLog("a refused acquisition after the step-down", func(l map[string]any) bool {
		s, _ := l["err"].(string)
		return l["msg"] == "cannot acquire the lease; retrying" && strings.Contains(s, `verb "update" on resource "leases"`)
	})
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz while refused after startup: %d %q; want 200", code, body)
	}
	eventually(t, "a Warning event on the pod naming the permission and the fix", func() (bool, string) {
		evs := refusalEvents(t, pod)
		if len(evs) == 0 {
			return false, "no PermissionDenied event"
		}
		m := evs[0].Message
		return evs[0].Type == corev1.EventTypeWarning && evs[0].InvolvedObject.UID == pod.UID &&
			strings.Contains(m, `verb "update" on resource "leases"`) && strings.Contains(m, "incumbent rbac --lease "+lease), m
	})
	granted := msg("permissions granted: the election goes on")
	if n := p.logCount(granted); n != 0 {
		t.Errorf("%q logged %d times while update is still refused", "permissions granted: the election goes on", n)
	}

	setLeaseUpdate(t, sa, role, lease, true)
	p.waitLogs("leadership again, in the same process", 2, msg("started leading"))
	p.waitLog("the fix", granted)
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM; want 0", code)
	}
}

// TestRefusedPermissionExitsUnderOnRefusedExit: --on-refused=exit (and its
// variable) keeps the behaviour scripts and CI rely on: exit 3 at once,
// naming the permission.
func TestRefusedPermissionExitsUnderOnRefusedExit(t *testing.T) {
	const ns, lease = "refused-exit", "rx"
	saKC, sa, role, _ := refusedSetup(t, ns, lease, "rx-a")
	setLeaseUpdate(t, sa, role, lease, false)
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", nil, []string{"--on-refused=exit"}},
		{"env", []string{"INCUMBENT_ON_REFUSED=exit"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, "rx-"+c.name, append([]string{"POD_NAME=rx-a", "POD_NAMESPACE=" + ns}, c.env...),
				append(append([]string{"run", "--kubeconfig=" + saKC, "--lease=" + lease, "--http-addr=", "--log-format=json"},
					fastTimings...), c.args...)...)
			if code := p.wait(); code != 3 {
				t.Errorf("exit %d; want 3", code)
			}
			p.waitLog("the fatal error naming the permission", func(l map[string]any) bool {
				s, _ := l["err"].(string)
				return l["msg"] == "incumbent failed" && strings.Contains(s, `verb "update" on resource "leases"`)
			})
		})
	}
}

// TestRejectedCredentialsAreWaitedForAndNamed: a token the API server
// rejects (401: invalid, expired, or a pod's bound token once its pod is
// deleted) is not a Role's fault. The sidecar says so, without sending the
// operator to the Role, and waits as for a refused permission.
func TestRejectedCredentialsAreWaitedForAndNamed(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "bad.kubeconfig")
	if err := writeKubeconfig(kc, &rest.Config{Host: env.Config.Host, BearerToken: "not-a-valid-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}}); err != nil {
		t.Fatal(err)
	}
	p := start(t, "rejected", nil, append([]string{"run", "--kubeconfig=" + kc, "--lease=rejected", "-n", "default",
		"--http-addr=127.0.0.1:0", "--log-format=json"}, fastTimings...)...)
	rejected := func(l map[string]any) bool {
		m, _ := l["msg"].(string)
		e, _ := l["err"].(string)
		return l["level"] == "ERROR" && strings.Contains(m, "rejects this sidecar's credentials") && strings.Contains(e, "401 Unauthorized")
	}
	p.waitLogs("two attempts, each naming the rejected credentials", 2, rejected)
	if code, body := httpGet(t, "http://"+p.statusAddr()+"/healthz"); code != 200 || !strings.Contains(body, "rejects the credentials") || strings.Contains(body, "incumbent rbac") {
		t.Errorf("/healthz with rejected credentials: %d %q; want 200, saying the credentials are rejected, no Role to print", code, body)
	}
}
