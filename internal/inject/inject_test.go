package inject

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from what inject writes")

// realWorld are manifests as people write them and as tools render them;
// each is injected, and what inject writes is kept in testdata/*.golden.yaml
// for review.
var realWorld = []struct {
	file string
	o    Options
	// changed: how many objects of the input inject changes (the
	// workloads, and a workload's own ServiceAccount, labelled to be
	// removed last).
	changed int
}{
	// An existing init container stays first; the sidecar goes last.
	{"deployment-with-init.yaml", Options{Lease: "shop-api"}, 1},
	// A StatefulSet with its own service account (bound, not replaced) and
	// a headless Service of its own.
	{"statefulset.yaml", Options{Lease: "postgres", Mode: Labels, Events: true}, 2},
	// A List (kubectl's shape): the RBAC objects go into it.
	{"list.yaml", Options{Lease: "scheduler", Mode: LeaderPort}, 1},
	// What helm template / a post-renderer gets: "# Source:" comments, the
	// chart's own ServiceAccount (kept and bound), its own
	// PodDisruptionBudget (so inject adds none), a test hook pod (not a
	// workload to inject).
	{"helm-chart.yaml", Options{Lease: "web", Mode: Labels, Events: true}, 2},
	// Comments everywhere, an anchor and an alias, a block scalar, a second
	// document: exec mode.
	{"comments.yaml", Options{Lease: "billing", Mode: Exec}, 1},
	// kustomize build's shape: sorted keys, unindented lists, a namespace.
	{"kustomize.yaml", Options{Lease: "notifier"}, 1},
	// A KRM function's input (kustomize's exec transformers): the items are
	// injected, the functionConfig is left alone.
	{"resourcelist.yaml", Options{Lease: "router", Mode: Labels, Events: true}, 1},
	// A CronJob in exec mode: the Job ends with its workload.
	{"cronjob.yaml", Options{Lease: "report", Mode: Exec}, 1},
	// hostNetwork, accepted, on other ports.
	{"daemonset-host-network.yaml", Options{Lease: "node-agent", HostNetwork: true, HTTPPort: 9440, ControlPort: 9441}, 1},
	// JSON in, YAML out.
	{"pod.json", Options{Lease: "singleton"}, 1},
	// A bucketed controller: one sidecar holds a lease per bucket.
	{"bucketed-controller.yaml", Options{Lease: "reconciler-0", Leases: []string{"reconciler-0", "reconciler-1", "reconciler-2"}}, 1},
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealWorldManifests injects each manifest and checks the result: as
// reviewed (the golden file), a fixed point (injecting it again changes
// nothing), every comment of the input kept, every object inject does not
// change byte for byte as it was, and every object accepted by the API
// server (a server-side dry run with strict field validation).
func TestRealWorldManifests(t *testing.T) {
	c := newCluster(t)
	for _, tc := range realWorld {
		t.Run(tc.file, func(t *testing.T) {
			in := read(t, tc.file)
			out, err := Inject(tc.o, Input{Name: tc.file, Data: in})
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(tc.file, filepath.Ext(tc.file)) + ".golden.yaml"
			if *update {
				if err := os.WriteFile(filepath.Join("testdata", golden), out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := read(t, golden); !bytes.Equal(out, want) {
				t.Errorf("inject writes what testdata/%s does not hold (go test ./internal/inject -update, and review the diff):\n%s", golden, out)
			}

			again, err := Inject(tc.o, Input{Name: "output", Data: out})
			if err != nil {
				t.Fatalf("injecting the output again: %v", err)
			}
			if !bytes.Equal(again, out) {
				t.Errorf("injecting twice changes the output:\n%s", again)
			}

			for _, cm := range comments(t, in) {
				if !bytes.Contains(out, []byte(cm)) {
					t.Errorf("the comment %q is lost", cm)
				}
			}

			changed := untouched(t, tc.o, in, out)
			if changed != tc.changed {
				t.Errorf("%d objects changed, want %d", changed, tc.changed)
			}

			ns := "inject-" + strings.TrimSuffix(tc.file, filepath.Ext(tc.file))
			c.namespace(t, ns, nil)
			for _, obj := range objects(t, out) {
				if obj.GetNamespace() != "" {
					c.namespace(t, obj.GetNamespace(), nil)
				}
				if _, err := c.create(context.Background(), obj, ns, true); err != nil {
					t.Errorf("the API server refuses %s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

// comments returns every comment of a YAML stream, line by line.
func comments(t *testing.T, in []byte) []string {
	t.Helper()
	var out []string
	dec := yaml.NewDecoder(bytes.NewReader(in))
	for {
		var n yaml.Node
		if dec.Decode(&n) != nil {
			return out
		}
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
				for _, l := range strings.Split(c, "\n") {
					if l = strings.TrimSpace(l); l != "" {
						out = append(out, l)
					}
				}
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(&n)
	}
}

// untouched checks that every object of in that inject did not change is
// in out, written exactly as it was read, and returns how many changed.
func untouched(t *testing.T, o Options, in, out []byte) int {
	t.Helper()
	render := func(data []byte) map[key]string {
		docs, err := parseStream(Input{Name: "x", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		m := map[key]string{}
		for _, ob := range collect(docs) {
			var b bytes.Buffer
			if err := writeStream(&b, []*document{newDocument(ob.node)}); err != nil {
				t.Fatal(err)
			}
			m[ob.key()] = b.String()
		}
		return m
	}
	before, after := render(in), render(out)
	changed := 0
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			t.Errorf("%s %s is gone", k.kind, k.name)
		case a != b:
			changed++
		}
	}
	return changed
}
