package examples

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/internal/cli"
	"github.com/incumbent-io/incumbent/internal/inject"
)

// incumbent runs the incumbent command line as its binary would, with
// stdin, and returns the exit code and outputs.
func incumbent(t *testing.T, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.Env{Args: args, Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" }, TerminationLog: filepath.Join(t.TempDir(), "termination-log")})
	return code, out.Bytes(), errb.String()
}

// helmCommand returns the command line Helm runs for the post-renderer
// plugin in helm/incumbent-inject with the given --post-renderer-args: the
// plugin's command, split at spaces, its args, then the extra ones (as
// Helm 4's PrepareCommands composes them).
func helmCommand(t *testing.T, extra ...string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("helm", "incumbent-inject", "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		APIVersion    string `yaml:"apiVersion"`
		Type          string `yaml:"type"`
		Name          string `yaml:"name"`
		Version       string `yaml:"version"`
		Runtime       string `yaml:"runtime"`
		RuntimeConfig struct {
			PlatformCommand []struct {
				OS      string   `yaml:"os"`
				Arch    string   `yaml:"arch"`
				Command string   `yaml:"command"`
				Args    []string `yaml:"args"`
			} `yaml:"platformCommand"`
		} `yaml:"runtimeConfig"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != "v1" || p.Type != "postrenderer/v1" || p.Runtime != "subprocess" || p.Name != "incumbent-inject" ||
		p.Version == "" || len(p.RuntimeConfig.PlatformCommand) != 1 {
		t.Fatalf("not a Helm 4 post-renderer plugin: %+v", p)
	}
	c := p.RuntimeConfig.PlatformCommand[0]
	if c.OS != "" || c.Arch != "" {
		t.Fatalf("the plugin's command is for %s/%s only", c.OS, c.Arch)
	}
	argv := append(strings.Split(c.Command, " "), c.Args...)
	return append(argv, extra...)
}

// TestHelmPostRenderer runs incumbent inject as Helm runs the post-renderer
// (the plugin's command line, and Helm 3's form) on a chart as Helm renders
// it: exit 0, the sidecar added, the RBAC objects and the chart's own
// ServiceAccount kept by helm uninstall, every object accepted by the API
// server, the chart's test hook left alone; and a chart it refuses fails
// the install with exit 2 and the reason.
func TestHelmPostRenderer(t *testing.T) {
	rendered, err := os.ReadFile(filepath.Join("helm", "testdata", "rendered.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{"--lease=web", "--mode=labels", "--rbac=keep"}
	argv := helmCommand(t, extra...)
	if argv[0] != "incumbent" {
		t.Fatalf("the plugin runs %q", argv[0])
	}
	code, out, errb := incumbent(t, rendered, argv[1:]...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	// Helm 3: the binary itself, its arguments from --post-renderer-args.
	code3, out3, errb := incumbent(t, rendered, append([]string{"inject"}, extra...)...)
	if code3 != 0 || !bytes.Equal(out3, out) {
		t.Errorf("Helm 3's form: exit %d (%s), other output", code3, errb)
	}
	if !bytes.HasPrefix(out, []byte("# Source: web/templates/serviceaccount.yaml\n")) {
		t.Errorf("Helm's # Source: comments are lost:\n%s", out)
	}
	objs := unstructuredObjects(t, out)
	kept := map[string]bool{}
	for _, o := range objs {
		if o.GetAnnotations()[inject.HelmKeep] == "keep" {
			kept[o.GetKind()+"/"+o.GetName()] = true
		}
		if o.GetName() == "web-test-connection" && strings.Contains(mustJSON(t, o), "incumbent") {
			t.Error("the test hook was injected")
		}
	}
	if want := []string{"Role/incumbent-web", "RoleBinding/incumbent-web", "ServiceAccount/web"}; len(kept) != len(want) ||
		!kept[want[0]] || !kept[want[1]] || !kept[want[2]] {
		t.Errorf("kept by helm uninstall: %v, want %q", kept, want)
	}
	applyDryRun(t, objs, "helm-example")

	hostNet := bytes.Replace(rendered, []byte("      serviceAccountName: web\n"), []byte("      serviceAccountName: web\n      hostNetwork: true\n"), 1)
	if code, _, errb := incumbent(t, hostNet, argv[1:]...); code != cli.ExitUsage || !strings.Contains(errb, "runs on the host's network") {
		t.Errorf("a chart on the host's network: exit %d, %q", code, errb)
	}
}

// TestKustomizeFunction runs what kustomize/incumbent-inject runs on what
// kustomize build --enable-alpha-plugins --enable-exec gives it for
// kustomize/ (its resources, namespaced, in a ResourceList with the
// transformer's config): a ResourceList comes back, the config untouched,
// the items injected and accepted by the API server. And the same without
// the function, in a pipeline.
func TestKustomizeFunction(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("kustomize", "incumbent-inject"))
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, l := range strings.Split(string(script), "\n") {
		if rest, ok := strings.CutPrefix(l, "exec incumbent "); ok {
			argv = strings.Fields(rest)
		}
	}
	if len(argv) == 0 || argv[0] != "inject" {
		t.Fatalf("kustomize/incumbent-inject does not exec incumbent inject:\n%s", script)
	}
	if st, err := os.Stat(filepath.Join("kustomize", "incumbent-inject")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("kustomize/incumbent-inject is not executable: %v", err)
	}
	var kz struct {
		Namespace    string   `yaml:"namespace"`
		Resources    []string `yaml:"resources"`
		Transformers []string `yaml:"transformers"`
	}
	readYAML(t, filepath.Join("kustomize", "kustomization.yaml"), &kz)
	if len(kz.Transformers) != 1 {
		t.Fatalf("transformers %q", kz.Transformers)
	}
	var fnConfig map[string]any
	readYAML(t, filepath.Join("kustomize", kz.Transformers[0]), &fnConfig)
	var items []any
	for _, r := range kz.Resources {
		var obj map[string]any
		readYAML(t, filepath.Join("kustomize", r), &obj)
		obj["metadata"].(map[string]any)["namespace"] = kz.Namespace
		items = append(items, obj)
	}
	in, err := yaml.Marshal(map[string]any{"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList",
		"items": items, "functionConfig": fnConfig})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errb := incumbent(t, in, argv...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var rl struct {
		APIVersion     string           `yaml:"apiVersion"`
		Kind           string           `yaml:"kind"`
		Items          []map[string]any `yaml:"items"`
		FunctionConfig map[string]any   `yaml:"functionConfig"`
	}
	if err := yaml.Unmarshal(out, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Kind != "ResourceList" || mustJSON(t, rl.FunctionConfig) != mustJSON(t, fnConfig) {
		t.Errorf("not the ResourceList with its functionConfig:\n%s", out)
	}
	var kinds []string
	var objs []*unstructured.Unstructured
	for _, it := range rl.Items {
		u := &unstructured.Unstructured{Object: jsonMap(t, it)}
		kinds = append(kinds, u.GetKind())
		objs = append(objs, u)
	}
	if want := []string{"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget"}; !slices.Equal(kinds, want) {
		t.Errorf("items %q, want %q", kinds, want)
	}
	applyDryRun(t, objs, kz.Namespace)

	// The pipeline: kustomize build . | incumbent inject ... | kubectl apply -f -
	var stream bytes.Buffer
	for _, it := range items {
		b, err := yaml.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		stream.WriteString("---\n")
		stream.Write(b)
	}
	code, piped, errb := incumbent(t, stream.Bytes(), argv...)
	if code != 0 {
		t.Fatalf("pipeline: exit %d: %s", code, errb)
	}
	if got := unstructuredObjects(t, piped); len(got) != len(objs) {
		t.Errorf("the pipeline writes %d objects, the function %d", len(got), len(objs))
	}
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := sigsyaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := sigsyaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte(mustJSON(t, v)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// unstructuredObjects decodes the objects of a YAML stream (the items of
// Lists in their place), skipping documents of comments alone.
func unstructuredObjects(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		var v map[string]any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: jsonMap(t, v)}
		if strings.HasSuffix(u.GetKind(), "List") {
			items, _ := v["items"].([]any)
			for _, it := range items {
				out = append(out, &unstructured.Unstructured{Object: jsonMap(t, it)})
			}
			continue
		}
		out = append(out, u)
	}
}

// applyDryRun has the API server validate each object (server-side dry
// run, strict fields) in namespace ns, as kubectl apply -n would.
func applyDryRun(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]string{"ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
		"Deployment": "deployments", "Service": "services", "PodDisruptionBudget": "poddisruptionbudgets", "Pod": "pods"}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		res, ok := resources[gvk.Kind]
		if !ok {
			t.Fatalf("no resource for %s", gvk)
		}
		r := dyn.Resource(schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: res}).Namespace(ns)
		if _, err := r.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
			t.Errorf("the API server refuses %s %s: %v", gvk.Kind, o.GetName(), err)
		}
	}
}
