package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// applyRBAC creates the objects of `incumbent rbac` output, decoded
// strictly.
func applyRBAC(t *testing.T, doc string) (sa *corev1.ServiceAccount, role *rbacv1.Role) {
	t.Helper()
	ctx := context.Background()
	sa, role, rb := &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}
	parts := strings.Split(doc, "\n---\n")
	if len(parts) != 3 {
		t.Fatalf("want 3 documents:\n%s", doc)
	}
	for i, into := range []any{sa, role, rb} {
		if err := yaml.UnmarshalStrict([]byte(parts[i]), into); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	var err error
	if sa, err = admin.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if role, err = admin.RbacV1().Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err = admin.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return sa, role
}

// saKubeconfig writes a kubeconfig that authenticates as sa with a real
// service-account token.
func saKubeconfig(t *testing.T, sa *corev1.ServiceAccount) string {
	t.Helper()
	tok, err := admin.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(context.Background(), sa.Name,
		&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := writeKubeconfig(path, &rest.Config{Host: env.Config.Host, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}}); err != nil {
		t.Fatal(err)
	}
	return path
}

// allowed asks the API server whether the service account may do verb.
func allowed(t *testing.T, sa *corev1.ServiceAccount, verb, group, resource, name string) bool {
	t.Helper()
	r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + sa.Namespace + ":" + sa.Name,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: sa.Namespace, Verb: verb, Group: group,
				Resource: resource, Name: name},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

// TestRBACGeneratedRoleWorksAndMissingPermissionsAreNamed applies the
// output of `incumbent rbac`, runs a sidecar as that service account (real
// token), and then removes one permission at a time: under
// --on-refused=exit the sidecar must fail at startup (exit 3) naming the
// verb and the resource. (The default, --on-refused=wait, waits instead:
// see refused_test.go.)
func TestRBACGeneratedRoleWorksAndMissingPermissionsAreNamed(t *testing.T) {
	const ns = "rbac-e2e"
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, doc, errOut := runCLI(t, nil, "rbac", "--lease=rb", "-n", ns, "--service-account=rb-sa", "--label-pod", "--events")
	if code != 0 {
		t.Fatalf("incumbent rbac: exit %d: %s", code, errOut)
	}
	sa, role := applyRBAC(t, doc)
	saKC := saKubeconfig(t, sa)
	createPod(t, ns, "rb-a", nil)

	run := func(name string) *proc {
		return start(t, name, []string{"POD_NAME=rb-a", "POD_NAMESPACE=" + ns},
			append([]string{"run", "--kubeconfig=" + saKC, "--lease=rb", "--http-addr=127.0.0.1:0", "--log-format=json",
				"--label-pod", "--events", "--on-refused=exit"}, fastTimings...)...)
	}
	p := run("rb-full")
	p.waitLog("leadership under the generated Role", msg("started leading"))
	eventually(t, "pod labelled leader by the service account", func() (bool, string) {
		pod, err := admin.CoreV1().Pods(ns).Get(ctx, "rb-a", metav1.GetOptions{})
		return err == nil && pod.Labels["incumbent.io/role"] == "leader", "labels not set"
	})
	code, out, errOut := runCLI(t, nil, "status", "--kubeconfig="+saKC, "-n", ns, "--lease=rb")
	if code != 0 || !strings.Contains(out, "rb-a (Pending)") {
		t.Errorf("incumbent status as the service account: exit %d\n%s%s", code, out, errOut)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM under the generated Role", code)
	}

	full := role.Rules
	type perm struct{ group, resource, verb, name string }
	perms := []perm{
		{"coordination.k8s.io", "leases", "get", "rb"},
		{"coordination.k8s.io", "leases", "update", "rb"},
		{"coordination.k8s.io", "leases", "watch", "rb"},
		{"coordination.k8s.io", "leases", "create", ""},
		{"", "pods", "patch", ""},
		{"", "events", "create", ""},
	}
	for _, c := range perms {
		t.Run(c.resource+"/"+c.verb, func(t *testing.T) {
			r, err := admin.RbacV1().Roles(ns).Get(ctx, role.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r.Rules = nil
			for _, rule := range full {
				rule := *rule.DeepCopy()
				if rule.Resources[0] == c.resource && slices.Contains(rule.Verbs, c.verb) {
					rule.Verbs = slices.DeleteFunc(rule.Verbs, func(v string) bool { return v == c.verb })
				}
				if len(rule.Verbs) > 0 {
					r.Rules = append(r.Rules, rule)
				}
			}
			if _, err := admin.RbacV1().Roles(ns).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the authorizer sees the reduced Role", func() (bool, string) {
				for _, o := range perms {
					if allowed(t, sa, o.verb, o.group, o.resource, o.name) != (o != c) {
						return false, o.verb + " " + o.resource + " not yet as wanted"
					}
				}
				return true, ""
			})
			p := run("rb-without-" + c.verb + "-" + c.resource)
			want := `verb "` + c.verb + `" on resource "` + c.resource + `"`
			names := func(l map[string]any) bool {
				for _, k := range []string{"err", "refused"} {
					if s, ok := l[k].(string); ok && strings.Contains(s, want) {
						return true
					}
				}
				return false
			}
			if c.verb == "watch" {
				// Optional: the sidecar says so, polls, and leads.
				l := p.waitLog("the missing watch named", names)
				t.Logf("without %s %s: %v", c.verb, c.resource, l["msg"])
				p.waitLog("leadership without watch", msg("started leading"))
				p.signal(syscall.SIGTERM)
				if code := p.wait(); code != 0 {
					t.Errorf("without watch: exit %d after SIGTERM; want 0", code)
				}
				return
			}
			code := p.wait()
			t.Logf("without %s %s: %s", c.verb, c.resource, lastLine(p.output()))
			if code != 3 || p.logCount(names) == 0 {
				t.Errorf("without %s %s: exit %d, output:\n%s\nwant exit 3 (permission refused) and %q", c.verb, c.resource, code, p.output(), want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
