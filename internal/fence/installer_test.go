package fence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/internal/fence"
	"github.com/incumbent-io/incumbent/internal/rbac"
)

// TestTheInstallerRoleIsWhatApplyingTheFenceTakes: a user bound to the
// ClusterRole incumbent rbac --fence prints can apply every object
// incumbent fence prints; without its Lease rule, the API server refuses
// the policy.
func TestTheInstallerRoleIsWhatApplyingTheFenceTakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(env.Config)
	must(t, err)
	doc := rbac.FenceInstallerYAML()
	var role rbacv1.ClusterRole
	must(t, yaml.UnmarshalStrict([]byte(strings.TrimPrefix(doc, "---\n")), &role))

	withoutLeases := role.DeepCopy()
	withoutLeases.Name = "installer-without-leases"
	withoutLeases.Rules = withoutLeases.Rules[:2]
	for _, c := range []struct {
		user string
		role *rbacv1.ClusterRole
		ok   bool
	}{{"installer", &role, true}, {"installer-without-leases", withoutLeases, false}} {
		must(t, create(ctx, admin.RbacV1().ClusterRoles(), c.role))
		must(t, create(ctx, admin.RbacV1().ClusterRoleBindings(), &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: c.user},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: c.role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: c.user}}}))
		cfg, err := env.User(c.user)
		must(t, err)
		cs, err := kubernetes.NewForConfig(cfg)
		must(t, err)
		o := fence.Options{Lease: "db", Namespace: "installed-by-" + c.user, ServiceAccount: "db", Resources: []fence.Resource{{Resource: "configmaps"}}}
		policy, binding, err := fence.Objects(o)
		must(t, err)
		ar := cs.AdmissionregistrationV1()
		err = create(ctx, ar.ValidatingAdmissionPolicies(), policy)
		if c.ok {
			must(t, err)
			must(t, create(ctx, ar.ValidatingAdmissionPolicyBindings(), binding))
			anchorPolicy, anchorBinding := fence.Anchor()
			if err := create(ctx, ar.ValidatingAdmissionPolicies(), anchorPolicy); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Error(err)
			}
			if err := create(ctx, ar.ValidatingAdmissionPolicyBindings(), anchorBinding); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Error(err)
			}
			must(t, ar.ValidatingAdmissionPolicyBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}))
			must(t, ar.ValidatingAdmissionPolicies().Delete(ctx, policy.Name, metav1.DeleteOptions{}))
			continue
		}
		if err == nil || !strings.Contains(err.Error(), `must have "get" permission on all objects of the referenced paramKind (kind=Lease`) {
			t.Errorf("%s creating the policy: %v, want the API server's refusal for want of get on Leases", c.user, err)
		}
	}
}
