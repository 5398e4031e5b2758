package election_test

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election/electiontest"
)

// clientGoVerbsUser returns a client config for a user whose Role grants
// exactly what client-go's leaderelection needs on Leases: get, create and
// update; no watch.
func clientGoVerbsUser(t *testing.T, name string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	cs := admin(t)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			Verbs: []string{"get", "create", "update"}}}}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: name}}}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.User(name)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC reaches the authorizer asynchronously: wait until a get is allowed.
	uc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	waitFor(t, "the Role to take effect", 30*time.Second, poll.C, func() bool {
		_, err := uc.CoordinationV1().Leases(ns).Get(ctx, "probe", metav1.GetOptions{})
		return err == nil || !isForbidden(err)
	})
	return cfg
}

// A Role with client-go's classic verbs and no watch is enough: incumbent
// warns once, names the permission to add, polls instead of watching, leads
// and hands over.
func TestLeadsWithoutWatchPermission(t *testing.T) {
	lease := newLeaseName(t)
	cfg := clientGoVerbsUser(t, "client-go-verbs-"+lease)
	chk := electiontest.NewChecker()
	logA, logsA := newLogCapture(t)
	a := startCandidate(t, kubeStore(t, cfg, lease), "a", chk, candidateOpts{log: logA})
	waitLeader(t, a, 30*time.Second)
	b := startCandidate(t, kubeStore(t, cfg, lease), "b", chk, candidateOpts{})
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	waitFor(t, "b to see a lead", 30*time.Second, poll.C, func() bool { return b.e.Status().Leader == "a" })
	if err := a.e.Resign(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, b, 30*time.Second)
	for _, c := range []*candidate{a, b} {
		if err := c.e.Check(); err != nil {
			t.Errorf("%s: Check: %v", c.id, err)
		}
	}
	waitFor(t, "the warning", 10*time.Second, logsA.ch, func() bool { return logsA.has(`add verb "watch"`) })
	if n := logsA.count(`add verb "watch"`); n != 1 {
		t.Errorf("the missing watch permission was reported %d times; want once", n)
	}
	assertClean(t, chk)
}
