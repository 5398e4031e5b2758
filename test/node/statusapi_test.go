//go:build node

package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStatusAPI is sidecar mode 2: an application that follows its
// sidecar's /v1/watch, acts only while told it leads, writes with the
// fencing token, and takes 500ms to stop. Across leader pod deletions,
// releases and a rollout restart, no two replicas ever act at once, tokens
// only rise, the native sidecar outlives its application, and the lease
// passes on only after the old leader's application has stopped.
func TestStatusAPI(t *testing.T) {
	ns := newNamespace(t)
	res := newResource(t)
	t.Logf("logs: %s", collectLogs(t, ns))
	manifest := strings.Replace(appManifest(ns, "api", 3, "follow"), "          env:\n",
		"          env:\n            - {name: CHECKER, value: \""+res.URL+"\"}\n            - {name: STOP_DELAY, value: 500ms}\n", 1)
	apply(t, ns, inject(t, "api", "status", manifest))
	holder := watchHolder(t, ns, "api")
	waitFor(t, 120*time.Second, "the Deployment to roll out", func() error { return rolledOut(deployment(t, ns, "api")) })
	cur := res.awaitTerm(t, 60*time.Second, -1, "")
	cs := node.Client()
	n := min(*deletions, 10)
	for i := range n {
		waitFor(t, 30*time.Second, "the acting pod to hold the lease", func() error {
			if h := holder.last().value; h != cur.Identity {
				return fmt.Errorf("the lease is held by %q, %s acts", h, cur.Identity)
			}
			return nil
		})
		// Every other hand-over is a release (incumbent release) with the
		// pods left alive: only the sidecar's own waiting, not the kubelet's
		// ordering of a pod's shutdown, keeps the lease until the
		// application has stopped.
		release := i%2 == 1
		t0 := time.Now()
		if release {
			incumbent(t, nil, "release", "--lease", "api", "-n", ns)
		} else if err := cs.CoreV1().Pods(ns).Delete(context.Background(), cur.Identity, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		next := res.awaitTerm(t, 60*time.Second, cur.Token, cur.Identity)
		if release {
			results.add("status API: incumbent release → another replica acts", next.Begin.Sub(t0))
		} else {
			results.add("status API: leader pod deleted → another replica acts", next.Begin.Sub(t0))
		}
		// The old term ended before the lease passed on: the release waited
		// for the application (500ms of shutdown included).
		var old = cur
		for _, tm := range res.Terms() {
			if tm.Token == cur.Token {
				old = tm
			}
		}
		h := holder.await(t, t0, 30*time.Second, "the new holder", func(v string) bool { return v == next.Identity })
		if !old.Ended() || h.at.Before(old.End) {
			t.Errorf("the lease passed to %s at %s, but %s's application ended its term at %s", next.Identity, h.at.Format("15:04:05.000"), old.Identity, old.End.Format("15:04:05.000"))
		}
		results.add("status API: old application stopped → lease passed on", h.at.Sub(old.End))
		if release {
			cur = next
			continue
		}
		waitFor(t, 60*time.Second, "the old pod's exit report", func() error {
			if v, ok := res.exit(old.Identity); !ok {
				return fmt.Errorf("no exit report from %s yet", old.Identity)
			} else if v != "up" {
				t.Errorf("%s's sidecar did not answer once its application had stopped (%s): it stopped before the application", old.Identity, v)
			}
			return nil
		})
		waitFor(t, 120*time.Second, "the Deployment to roll out again", func() error { return rolledOut(deployment(t, ns, "api")) })
		cur = next
	}
	t0 := time.Now()
	restart(t, ns, "api")
	waitFor(t, 180*time.Second, "the rollout restart to complete", func() error { return rolledOut(deployment(t, ns, "api")) })
	results.add("status API: rollout restart, until complete", time.Since(t0))
	res.awaitTerm(t, 60*time.Second, cur.Token, "")
	res.verify(t)
	rep := res.Report()
	results.note("status API: %d terms, %d writes through %d hand-overs (pod deletions and releases, alternately) and a rollout restart; overlaps %d, stale writes %d",
		rep.Terms, rep.Writes, n, len(rep.Overlaps), len(rep.Stale))
}
