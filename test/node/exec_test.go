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

// execManifest runs the chaos harness's child, which reports each term to
// the checker, as the workload of the exec pattern.
func execManifest(ns, checkerURL string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: job
  namespace: %[1]s
spec:
  replicas: 3
  selector:
    matchLabels: {app: job}
  template:
    metadata:
      labels: {app: job}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: app
          image: %[2]s
          command: [/child]
          env:
            - {name: CHAOS_CHECKER, value: %[3]q}
`, ns, appImage, checkerURL)
}

// TestExec is the exec pattern: the workload runs in exactly one pod at a
// time. The leader pod is force-deleted (--grace-period=0 --force), and,
// separately, its incumbent process is killed through the runtime: the
// workload starts in another pod (or again in the same one) only when the
// lease allows, with a higher token.
func TestExec(t *testing.T) {
	ns := newNamespace(t)
	res := newResource(t)
	t.Logf("logs: %s", collectLogs(t, ns))
	apply(t, ns, inject(t, "job", "exec", execManifest(ns, res.URL)))
	waitFor(t, 120*time.Second, "the Deployment to roll out", func() error { return rolledOut(deployment(t, ns, "job")) })
	cur := res.awaitTerm(t, 60*time.Second, -1, "")
	cs := node.Client()
	ctx := context.Background()

	// Force deletion: the pod object is gone at once, and the kubelet
	// stops its containers with the shortest grace it allows.
	for range 3 {
		t0 := time.Now()
		zero := int64(0)
		if err := cs.CoreV1().Pods(ns).Delete(ctx, cur.Identity, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		next := res.awaitTerm(t, 60*time.Second, cur.Token, cur.Identity)
		results.add("exec: leader pod force-deleted → workload runs in another pod", next.Begin.Sub(t0))
		waitFor(t, 120*time.Second, "the Deployment to roll out again", func() error { return rolledOut(deployment(t, ns, "job")) })
		cur = next
	}

	// SIGKILL of the incumbent process (the container's init) through the
	// runtime: its workload dies with it, the container restarts in the
	// same pod, and the lease is held by a process that no longer exists
	// until it expires.
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, cur.Identity, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == "app" {
			id = strings.TrimPrefix(s.ContainerID, "containerd://")
		}
	}
	if id == "" {
		t.Fatalf("no container ID for %s/app", pod.Name)
	}
	t0 := time.Now()
	if _, err := node.Ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
		t.Fatal(err)
	}
	next := res.awaitTerm(t, 90*time.Second, cur.Token, "")
	results.add("exec: incumbent SIGKILLed through the runtime → workload runs again", next.Begin.Sub(t0))
	results.note("exec: after the SIGKILL of %s's incumbent, token %d began in %s %v later (the lease duration is 15s)",
		cur.Identity, next.Token, next.Identity, next.Begin.Sub(t0).Round(time.Millisecond))
	res.verify(t)
}
