package inject

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func kindsAndNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// TestRBACPlacement: --rbac=only and --rbac=exclude split what include
// writes in two, the workload's own ServiceAccount (a chart's) going with
// the RBAC objects, since the release needs its token; keep annotates them
// for Helm; include writes them before the workload, so that kubectl apply
// creates them first.
func TestRBACPlacement(t *testing.T) {
	for _, tc := range []struct {
		file string
		o    Options
		rbac []string
	}{
		{"helm-chart.yaml", Options{Lease: "web", Mode: Labels, Events: true},
			[]string{"Role/incumbent-web", "RoleBinding/incumbent-web", "ServiceAccount/web"}},
		{"deployment-with-init.yaml", Options{Lease: "shop-api"},
			[]string{"Role/incumbent-shop-api", "RoleBinding/incumbent-shop-api", "ServiceAccount/incumbent-shop-api"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := Input{Name: tc.file, Data: read(t, tc.file)}
			run := func(r RBAC) []byte {
				o := tc.o
				o.RBAC = r
				out, err := Inject(o, in)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			all := kindsAndNames(objects(t, run(RBACInclude)))
			only := kindsAndNames(objects(t, run(RBACOnly)))
			rest := kindsAndNames(objects(t, run(RBACExclude)))
			if !slices.Equal(only, tc.rbac) {
				t.Errorf("--rbac=only writes %q, want %q", only, tc.rbac)
			}
			for _, r := range tc.rbac {
				if slices.Contains(rest, r) {
					t.Errorf("--rbac=exclude writes %s", r)
				}
			}
			both := append(slices.Clone(only), rest...)
			sort.Strings(both)
			if !slices.Equal(both, all) {
				t.Errorf("only + exclude = %q, include = %q", both, all)
			}
			for _, obj := range objects(t, run(RBACKeep)) {
				name := obj.GetKind() + "/" + obj.GetName()
				if kept := obj.GetAnnotations()[HelmKeep] == "keep"; kept != slices.Contains(tc.rbac, name) {
					t.Errorf("--rbac=keep: %s annotated keep: %v", name, kept)
				}
				if slices.Contains(tc.rbac, name) && obj.GetLabels()[LeaseLabel] != tc.o.Lease {
					t.Errorf("--rbac=keep: %s is not labelled %s=%s, which the clean-up selects", name, LeaseLabel, tc.o.Lease)
				}
			}
			// Whatever the placement, the objects the sidecar needs while its
			// pod terminates are labelled to be removed last, and nothing else.
			for _, obj := range objects(t, run(RBACInclude)) {
				name := obj.GetKind() + "/" + obj.GetName()
				if isLast := obj.GetLabels()[RemovalLabel] == RemoveLast; isLast != slices.Contains(tc.rbac, name) {
					t.Errorf("%s labelled %s=%s: %v", name, RemovalLabel, RemoveLast, isLast)
				}
			}
			// include: the RBAC objects come before the workload.
			var order []string
			for _, obj := range objects(t, run(RBACInclude)) {
				order = append(order, obj.GetKind())
			}
			if w := slices.Index(order, "Deployment"); w < slices.Index(order, "RoleBinding") || w < slices.Index(order, "Role") {
				t.Errorf("the RBAC objects do not precede the workload: %q", order)
			}
		})
	}
}

// TestRestrictedPodSecurity: an application that PodSecurity's restricted
// profile admits is still admitted with incumbent, in every mode (a real
// API server, enforcing the profile on its namespace).
func TestRestrictedPodSecurity(t *testing.T) {
	c := newCluster(t)
	ns := "inject-restricted"
	c.namespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: restricted
  labels: {app: restricted}
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: app
      image: registry.example/app:1
      command: [/app]
      ports: [{name: http, containerPort: 8080}]
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
`
	for _, obj := range objects(t, []byte(pod)) {
		if _, err := c.create(context.Background(), obj, ns, true); err != nil {
			t.Fatalf("the application alone is refused: %v", err)
		}
	}
	for _, m := range Modes() {
		out, err := Inject(Options{Lease: "restricted", Mode: m}, Input{Name: "pod.yaml", Data: []byte(pod)})
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objects(t, out) {
			if _, err := c.create(context.Background(), obj, ns, true); err != nil {
				t.Errorf("--mode %s: %s %s is refused: %v", m, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	// Without its securityContext, the sidecar would be refused: the test
	// tells.
	bare := strings.Replace(pod, "  securityContext:\n    runAsNonRoot: true\n    seccompProfile: {type: RuntimeDefault}\n", "", 1)
	bare = strings.Replace(bare, "      securityContext:\n        allowPrivilegeEscalation: false\n        capabilities: {drop: [ALL]}\n", "", 1)
	if _, err := c.create(context.Background(), objects(t, []byte(bare))[0], ns, true); err == nil {
		t.Error("the namespace admits a pod the restricted profile refuses: it does not enforce the profile")
	}
}

// TestSeveralInputs: files are one stream; the RBAC objects go before the
// workload, in its file's place, and --workload chooses among workloads
// (a Helm hook too, when named).
func TestSeveralInputs(t *testing.T) {
	a := Input{Name: "a.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n")}
	b := Input{Name: "b.yaml", Data: []byte(deployment("b", appContainer) + "---\n" + deployment("c", appContainer))}
	out, err := Inject(Options{Lease: "b", Workloads: []string{"Deployment/b"}}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := kindsAndNamesInOrder(objects(t, out))
	want := []string{"ConfigMap/first", "ServiceAccount/incumbent-b", "Role/incumbent-b", "RoleBinding/incumbent-b", "Deployment/b", "Deployment/c"}
	if !slices.Equal(got, want) {
		t.Errorf("objects %q, want %q", got, want)
	}
	hook := Input{Name: "chart.yaml", Data: read(t, "helm-chart.yaml")}
	out, err = Inject(Options{Lease: "hook", Workloads: []string{"web-test-connection"}}, hook)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objects(t, out) {
		if obj.GetName() == "web-test-connection" && !strings.Contains(string(out), "--lease=hook") {
			t.Error("the named hook pod was not injected")
		}
	}
}

func kindsAndNamesInOrder(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}
