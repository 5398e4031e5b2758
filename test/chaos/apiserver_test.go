package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/fence"
	"github.com/incumbent-io/incumbent/store/kube"
	"github.com/incumbent-io/incumbent/test/chaos/checker"
)

var flagPauses = flag.Int("chaos.pauses", 3, "how many leader pauses TestAPIServerFence injects in each of its two runs (the measured run: 100)")

// apiProfile is the API-server profile of the harness: every candidate
// runs in a Pod object of the API server (no kubelet is needed: it is only
// the identity its token is bound to), the sidecar records the pod's UID
// (POD_UID), and the workload writes a ConfigMap through the API server
// with a token bound to that pod. With the fence policy installed, the API
// server itself must refuse a deposed leader's writes.
type apiProfile struct {
	admin     *kubernetes.Clientset
	sa        string
	configMap string
	caFile    string
	ctx       context.Context
}

const apiNamespace = "default"

// setUp creates the workloads' service account, allowed to write
// ConfigMaps, and, with policy, installs the fence as incumbent fence
// prints it and waits until the API server enforces it.
func (a *apiProfile) setUp(h *harness, policy bool) {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.ctx = ctx
	admin, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	a.admin = admin
	a.sa, a.configMap = h.lease+"-writer", h.lease+"-state"
	a.caFile = filepath.Join(h.dir, "ca.crt")
	if err := os.WriteFile(a.caFile, cluster.Config().CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := apiNamespace
	for _, err := range []error{
		createIgnoringExisting(ctx, admin.CoreV1().ServiceAccounts(ns), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: a.sa}}),
		createIgnoringExisting(ctx, admin.RbacV1().Roles(ns), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: a.sa},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "update"}}}}),
		createIgnoringExisting(ctx, admin.RbacV1().RoleBindings(ns), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: a.sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: a.sa},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: a.sa, Namespace: ns}}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !policy {
		return
	}
	ar := admin.AdmissionregistrationV1()
	anchorPolicy, anchorBinding := fence.Anchor()
	policyObj, binding, err := fence.Objects(fence.Options{Lease: h.lease, Namespace: ns, ServiceAccount: a.sa,
		Resources: []fence.Resource{{Resource: "configmaps"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		createIgnoringExisting(ctx, ar.ValidatingAdmissionPolicies(), anchorPolicy),
		createIgnoringExisting(ctx, ar.ValidatingAdmissionPolicyBindings(), anchorBinding),
		createIgnoringExisting(ctx, ar.ValidatingAdmissionPolicies(), policyObj),
		createIgnoringExisting(ctx, ar.ValidatingAdmissionPolicyBindings(), binding),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = ar.ValidatingAdmissionPolicyBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		_ = ar.ValidatingAdmissionPolicies().Delete(context.Background(), policyObj.Name, metav1.DeleteOptions{})
	})
	// Enforced once a token of the service account that names no pod is
	// refused by the policy, which it does whatever the Lease says (and
	// before the Lease exists, for want of its parameter).
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, a.sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := kubernetes.NewForConfig(&rest.Config{Host: cluster.Config().Host, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cluster.Config().CAData}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(settleBound)
	for {
		_, err := probe.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: h.lease + "-probe"}}, metav1.CreateOptions{})
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policyObj.Name+"'") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fence policy is not enforced within %v: the probe got %v", settleBound, err)
		}
	}
}

type creator[T any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
}

func createIgnoringExisting[T any](ctx context.Context, c creator[T], obj T) error {
	if _, err := c.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// podEnv (re-)creates the Pod object of candidate c, as a restarted pod of
// a StatefulSet comes back: same name, new UID; requests a token bound to
// it; and returns the environment that gives the sidecar its UID and the
// workload its token.
func (a *apiProfile) podEnv(h *harness, c *candidate, run string) []string {
	t := h.t
	t.Helper()
	pods := a.admin.CoreV1().Pods(apiNamespace)
	zero := int64(0)
	if err := pods.Delete(a.ctx, c.id, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	var p *corev1.Pod
	deadline := time.Now().Add(settleBound)
	for {
		var err error
		p, err = pods.Create(a.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.id},
			Spec: corev1.PodSpec{ServiceAccountName: a.sa, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}}},
			metav1.CreateOptions{})
		if err == nil {
			break
		}
		// The deleted pod of the same name may still be on its way out.
		if !apierrors.IsAlreadyExists(err) || time.Now().After(deadline) {
			t.Fatalf("create pod %s: %v", c.id, err)
		}
	}
	tok, err := a.admin.CoreV1().ServiceAccounts(apiNamespace).CreateToken(a.ctx, a.sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(h.dir, run+".token")
	if err := os.WriteFile(tokenFile, []byte(tok.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"POD_UID=" + string(p.UID), "CHAOS_API=https://" + c.proxy.Addr(), "CHAOS_TOKEN_FILE=" + tokenFile,
		"CHAOS_CA_FILE=" + a.caFile, "CHAOS_CONFIGMAP=" + apiNamespace + "/" + a.configMap}
}

// checkHolderPodUID checks that the sidecar in office recorded its pod's UID
// on the Lease (POD_UID), so that the policy compares UIDs, not names.
func (a *apiProfile) checkHolderPodUID(t *testing.T, lease string) {
	t.Helper()
	l, err := a.admin.CoordinationV1().Leases(apiNamespace).Get(a.ctx, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.admin.CoreV1().Pods(apiNamespace).Get(a.ctx, *l.Spec.HolderIdentity, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := kube.HolderPodUID(l); got != string(p.UID) {
		t.Errorf("the Lease records holder pod UID %q, want %q, the UID of pod %s", got, p.UID, p.Name)
	}
}

// TestAPIServerFence pauses the leader (SIGSTOP, longer than the lease,
// then resumed, workload first or together) -chaos.pauses times, in two
// elections whose workloads write a ConfigMap through the API server with
// pod-bound tokens: one without the fence policy, where the API server
// must be seen to accept a deposed leader's writes (the control), and one
// with it, where it must accept none. The checker judges each accepted
// write by etcd's order (checker.APIWrite).
func TestAPIServerFence(t *testing.T) {
	if *flagPauses < 1 {
		t.Fatalf("-chaos.pauses must be positive, got %d", *flagPauses)
	}
	s := seed(t)
	t.Logf("seed %d, %d pauses in each run", s, *flagPauses)
	reports := map[bool]checker.Report{}
	for _, policy := range []bool{false, true} {
		name := map[bool]string{false: "without the policy", true: "with the policy"}[policy]
		lease := map[bool]string{false: "unfenced-api", true: "fenced-api"}[policy]
		t.Run(name, func(t *testing.T) {
			h := newHarnessFor(t, lease, 3, policy, []string{faultStop}, s, &apiProfile{})
			if err := h.waitSettled(-1, time.Now()); err != nil {
				t.Fatalf("no first leader: %v", err)
			}
			h.api.checkHolderPodUID(t, lease)
			for i := range *flagPauses {
				pause(h.between(0, time.Second))
				l, err := h.currentLeader()
				if err != nil {
					t.Fatalf("before pause %d: %v", i+1, err)
				}
				mode := resumeTogether
				if h.rng.IntN(2) == 1 {
					mode = resumeWorkloadFirst
				}
				if err := h.stop(l, mode); err != nil {
					t.Fatalf("pause %d: %v", i+1, err)
				}
			}
			h.shutdown()
			r := h.check.Report()
			reports[policy] = r
			t.Logf("%s:\n%s", name, r.Markdown())
			stop := r.Kind(faultStop)
			if stop.Faults != *flagPauses || r.Unsettled > 0 || len(r.Protocol) > 0 {
				t.Errorf("%d pauses recorded (want %d), %d unsettled, protocol errors %q", stop.Faults, *flagPauses, r.Unsettled, r.Protocol)
			}
			if stop.StaleAttempted == 0 {
				t.Errorf("%d pauses left no trace: no stale write attempted", stop.Faults)
			}
			if policy && stop.StaleAccepted > 0 {
				t.Errorf("the API server accepted %d stale write(s) with the fence policy installed", stop.StaleAccepted)
			}
			if !policy && stop.StaleAccepted == 0 {
				t.Error("without the policy, the checker counted no stale write accepted by the API server: it cannot tell")
			}
		})
	}
	if *flagReport && len(reports) == 2 {
		path := filepath.Join("results", "apiserver-fence.md")
		if err := writeAPIReport(path, reports, s); err != nil {
			t.Error(err)
		} else {
			t.Logf("report written to %s", path)
		}
	}
}

func writeAPIReport(path string, reports map[bool]checker.Report, seed uint64) error {
	var b strings.Builder
	b.WriteString("# The API server's fence under leader pauses: latest run\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- %d leader pauses (SIGSTOP longer than the lease) in each of two elections of 3 sidecars, seed %d\n", *flagPauses, seed)
	fmt.Fprintf(&b, "- timings: lease %v, renew deadline %v, retry period %v, grace %v\n", leaseDuration, renewDeadline, retryPeriod, grace)
	fmt.Fprintf(&b, "- race detector %v\n", raceEnabled)
	fmt.Fprintf(&b, "- command: `go test -timeout 60m ./test/chaos/ -run TestAPIServerFence -chaos.pauses=%d -chaos.seed=%d -chaos.report`\n\n", *flagPauses, seed)
	b.WriteString("Each workload updates a ConfigMap through the API server every 10 ms with a token bound to its Pod object;\n")
	b.WriteString("a write the API server accepted is stale when a newer term's Lease write comes before it in etcd's order\n")
	b.WriteString("(its resourceVersion is above that term's token).\n\n")
	for _, policy := range []bool{false, true} {
		fmt.Fprintf(&b, "## %s\n\n%s\n", map[bool]string{false: "Without the fence policy", true: "With the fence policy"}[policy], reports[policy].Markdown())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}
