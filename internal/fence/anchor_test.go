package fence_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/internal/fence"
)

// TestRemovingAFenceLeavesTheOthersCurrent removes a fence, waits until the
// API server no longer enforces it, then hands over a Lease that a fence
// installed afterwards judges by: the old holder must be refused. Without
// the anchor, whenever the removed fence was the last one bound, the API
// server's Lease informer stops for good (kubernetes/kubernetes#130887) and
// the later fence keeps admitting the old holder: this test fails.
func TestRemovingAFenceLeavesTheOthersCurrent(t *testing.T) {
	first := newWorld(t, "fence-removed")
	first.hold(first.newPod("db-0", fencedSA), true)
	o := fence.Options{Lease: leaseName, Namespace: first.ns, ServiceAccount: fencedSA, Resources: []fence.Resource{{Resource: "configmaps"}}}
	first.anchor()
	policy, binding, err := fence.Objects(o)
	must(t, err)
	ar := first.admin.AdmissionregistrationV1()
	must(t, create(first.ctx, ar.ValidatingAdmissionPolicies(), policy))
	must(t, create(first.ctx, ar.ValidatingAdmissionPolicyBindings(), binding))
	first.waitEnforced(policy.Name)

	// The second election's Lease exists, held by db-0, before the first
	// fence goes: the API server's copy has it.
	second := newWorld(t, "fence-later")
	a, b := second.newPod("db-0", fencedSA), second.newPod("db-1", fencedSA)
	second.hold(a, true)

	// Removed as docs/fencing.md says: its two objects, not the anchor.
	must(t, ar.ValidatingAdmissionPolicyBindings().Delete(first.ctx, binding.Name, metav1.DeleteOptions{}))
	must(t, ar.ValidatingAdmissionPolicies().Delete(first.ctx, policy.Name, metav1.DeleteOptions{}))
	probe := first.unboundClient(fencedSA)
	if _, err := first.until(func() error { return probe.write(first, "probe") }, accepted); err != nil {
		t.Fatalf("the removed fence is still enforced: %v", err)
	}

	second.install(fence.Options{})
	must(t, a.write(second, "state"))
	second.hold(b, true)
	if _, err := second.until(func() error { return a.write(second, "state") }, isFenced); err != nil {
		t.Fatalf("after the hand-over to db-1, db-0's writes: %v: the API server judges by a stale copy of the Lease", err)
	}
	if _, err := second.until(func() error { return b.write(second, "state") }, accepted); err != nil {
		t.Fatalf("db-1's writes: %v", err)
	}
}
