package examples

import (
	"bytes"
	"context"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
	"github.com/incumbent-io/incumbent/internal/inject"
	"github.com/incumbent-io/incumbent/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestFilesAreUpToDate(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("%d examples, want one per mode (4)", len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the generator writes (%v): run go generate ./deploy/examples", name, err)
		}
	}
}

// decode splits a manifest and decodes each document strictly (unknown or
// duplicate fields fail) into its typed object.
func decode(t *testing.T, doc []byte) []runtime.Object {
	t.Helper()
	s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	var objs []runtime.Object
	for i, part := range strings.Split(string(doc), "\n---\n") {
		if onlyComments(part) {
			continue // the header
		}
		obj, _, err := s.Decode([]byte(part), nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, part)
		}
		objs = append(objs, obj)
	}
	return objs
}

// onlyComments reports whether a YAML document holds nothing but comments.
func onlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// TestManifestsAreValid decodes every object strictly and has the API
// server validate it (server-side dry run), and checks that each
// Deployment's incumbent runs on the Lease its Role names.
func TestManifestsAreValid(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for name, doc := range files {
		t.Run(name, func(t *testing.T) {
			var lease string
			var args, resources []string
			for _, obj := range decode(t, doc) {
				var err error
				switch o := obj.(type) {
				case *corev1.ServiceAccount:
					_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, dry)
				case *rbacv1.Role:
					_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, dry)
					lease = o.Rules[0].ResourceNames[0]
					for _, r := range o.Rules {
						resources = append(resources, r.Resources...)
					}
				case *rbacv1.RoleBinding:
					_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, dry)
				case *appsv1.Deployment:
					_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, dry)
					for _, c := range append(o.Spec.Template.Spec.InitContainers, o.Spec.Template.Spec.Containers...) {
						if slices.Contains(c.Args, "run") || slices.Contains(c.Command, "run") {
							args = append(c.Command, c.Args...)
						}
					}
					if o.Spec.Template.Spec.ServiceAccountName == "" {
						t.Error("the Deployment does not run as the generated service account")
					}
				case *corev1.Service:
					_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, dry)
				case *policyv1.PodDisruptionBudget:
					_, err = cs.PolicyV1().PodDisruptionBudgets(o.Namespace).Create(ctx, o, dry)
				default:
					t.Fatalf("unexpected object %T", obj)
				}
				if err != nil {
					t.Errorf("the API server rejects %T: %v", obj, err)
				}
			}
			if lease == "" || !slices.Contains(args, "--lease="+lease) {
				t.Errorf("incumbent arguments %q do not name the Role's lease %q", args, lease)
			}
			// The Role grants exactly what the flags use. Create on events is
			// always there, once: for --events, and for the PermissionDenied
			// event of a refused permission (optional without --events).
			events := len(slices.DeleteFunc(slices.Clone(resources), func(r string) bool { return r != "events" }))
			if slices.Contains(args, "--label-pod") != slices.Contains(resources, "pods") || events != 1 {
				t.Errorf("incumbent arguments %q and Role resources %q disagree", args, resources)
			}
		})
	}
}

// TestProbesAndPaths checks, in every example, what the sidecar's start-up
// and the image need: the probes ask /healthz (which answers from the first
// moment) on the port --http-addr opens, the startup probe allows 30
// seconds, the leader port's readiness probe asks the port --leader-addr
// opens, the preStop hook and exec mode's copy name the image's real binary
// (buildinfo.ImageBinary), exec mode runs the very file the init container
// copies into a volume both mount, and incumbent's credentials are mounted
// where clients look for them.
func TestProbesAndPaths(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range files {
		t.Run(name, func(t *testing.T) {
			var d *appsv1.Deployment
			for _, obj := range decode(t, doc) {
				if o, ok := obj.(*appsv1.Deployment); ok {
					d = o
				}
			}
			if d == nil {
				t.Fatal("no Deployment")
			}
			spec := d.Spec.Template.Spec
			var inc *corev1.Container // the container incumbent runs in
			var installer *corev1.Container
			for i, c := range spec.InitContainers {
				switch c.Name {
				case inject.ContainerName:
					inc = &spec.InitContainers[i]
				case inject.InstallerName:
					installer = &spec.InitContainers[i]
				}
			}
			exec := installer != nil
			if exec {
				inc = &spec.Containers[0]
			}
			if inc == nil {
				t.Fatal("no container runs incumbent")
			}
			argv := append(slices.Clone(inc.Command), inc.Args...)
			flag := func(name string) string {
				for _, a := range argv {
					if v, ok := strings.CutPrefix(a, name+"="); ok {
						return v
					}
				}
				return ""
			}
			portOf := func(name string) int32 {
				for _, p := range inc.Ports {
					if p.Name == name {
						return p.ContainerPort
					}
				}
				t.Errorf("no port named %q", name)
				return 0
			}
			listens := func(addr string) int32 {
				_, p, err := net.SplitHostPort(addr)
				if err != nil {
					t.Fatalf("address %q: %v", addr, err)
				}
				n, _ := strconv.Atoi(p)
				return int32(n)
			}
			http := listens(flag("--http-addr"))
			for what, p := range map[string]*corev1.Probe{"startupProbe": inc.StartupProbe, "livenessProbe": inc.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || portOf(p.HTTPGet.Port.StrVal) != http {
					t.Errorf("%s %+v does not ask /healthz on --http-addr's port %d", what, p, http)
				}
			}
			if p := inc.StartupProbe; p != nil && p.PeriodSeconds*p.FailureThreshold < 30 {
				t.Errorf("the startup probe allows %ds", p.PeriodSeconds*p.FailureThreshold)
			}
			if la := flag("--leader-addr"); la != "" {
				p := inc.ReadinessProbe
				if p == nil || p.HTTPGet == nil || portOf(p.HTTPGet.Port.StrVal) != listens(la) {
					t.Errorf("the readiness probe %+v does not ask --leader-addr's port", p)
				}
			}
			mounted := func(c *corev1.Container, volume, at string) bool {
				for _, m := range c.VolumeMounts {
					if m.Name == volume && m.MountPath == at {
						return true
					}
				}
				return false
			}
			if !mounted(inc, inject.TokenVolume, inject.TokenPath) {
				t.Errorf("incumbent's credentials are not mounted at %s", inject.TokenPath)
			}
			if exec {
				if installer.Image != Image || len(installer.Command) != 3 || installer.Command[0] != buildinfo.ImageBinary ||
					installer.Command[1] != "copy-binary" || installer.Command[2] != inc.Command[0] {
					t.Errorf("the installer %q (image %s) does not copy %s to what %q runs", installer.Command, installer.Image, buildinfo.ImageBinary, inc.Command)
				}
				dir := path.Dir(inc.Command[0])
				if !mounted(installer, inject.BinVolume, dir) || !mounted(inc, inject.BinVolume, dir) {
					t.Errorf("%s is not in the volume %s both containers mount", inc.Command[0], inject.BinVolume)
				}
				if i := slices.Index(inc.Command, "--"); i < 0 || inc.Command[i+1] != "/app/server" {
					t.Errorf("the workload does not run after --: %q", inc.Command)
				}
				return
			}
			if inc.Image != Image || inc.RestartPolicy == nil || *inc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("the sidecar (image %s) is not a native sidecar of %s", inc.Image, Image)
			}
			if l := inc.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Exec == nil ||
				!slices.Equal(l.PreStop.Exec.Command, []string{buildinfo.ImageBinary, "withdraw"}) {
				t.Errorf("the preStop hook %+v does not run %s withdraw", l, buildinfo.ImageBinary)
			}
		})
	}
}
