//go:build node

package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// progressDeadline is the Deployments' progressDeadlineSeconds here: the
// default is 600s; a short one shows the same verdict sooner.
const progressDeadline = 15

// TestLeaderPort is sidecar mode 1 of the original design: a leader-only
// port as the sidecar's readinessProbe, so that only the leader is Ready.
// It reproduces what the original study saw, and checks which Deployment
// strategies let a rollout through.
func TestLeaderPort(t *testing.T) {
	for _, tc := range []struct {
		name, strategy string
		replicas       int
		deadlock       bool
	}{
		{"default-rolling-update", "", 3, true},
		// What the example had before this tier measured it.
		{"max-unavailable-1-max-surge-0", "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}", 2, true},
		{"recreate", "strategy: {type: Recreate}", 3, false},
		// deploy/examples/leader-port.yaml as shipped.
		{"example", "", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) { leaderPort(t, tc.name, tc.strategy, tc.replicas, tc.deadlock) })
	}
}

func leaderPort(t *testing.T, label, strategy string, replicas int, deadlock bool) {
	ns := newNamespace(t)
	t.Logf("logs: %s", collectLogs(t, ns))
	name := "lp"
	var manifest []byte
	if label == "example" {
		manifest = shippedExample(t, ns, "leader-port.yaml")
		name = "leader-port-demo"
	} else {
		base := appManifest(ns, name, replicas, "serve")
		if strategy != "" {
			base = strings.Replace(base, "  replicas: ", "  "+strategy+"\n  replicas: ", 1)
		}
		var warnings string
		manifest, warnings = injectWarnings(t, name, "leader-port", base)
		// inject warns exactly when the rollout is about to deadlock.
		if warned := strings.Contains(warnings, "a rollout deadlocks"); warned != deadlock {
			t.Errorf("inject warned of a deadlock: %v, a deadlock expected: %v (stderr %q)", warned, deadlock, warnings)
		}
	}
	// A short progress deadline: the default is 600s.
	manifest = []byte(strings.Replace(string(manifest), "\n  replicas: ", fmt.Sprintf("\n  progressDeadlineSeconds: %d\n  replicas: ", progressDeadline), 1))
	apply(t, ns, manifest)
	leaderPortRollout(t, ns, name, label, replicas, deadlock)
}

func leaderPortRollout(t *testing.T, ns, name, label string, replicas int, deadlock bool) {
	// A Service of every replica: only Ready pods are its endpoints.
	apply(t, ns, []byte(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s-all}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 8080, targetPort: http}]
`, name)))
	eps := watchEndpoints(t, ns, name+"-all")
	holder := watchHolder(t, ns, name)

	// After the first create: one pod 2/2, the others 1/2, and the
	// Deployment never complete: kubectl rollout status would wait forever.
	leader := holder.await(t, time.Time{}, 90*time.Second, "a leader", func(v string) bool { return v != "" }).value
	waitFor(t, 60*time.Second, "one pod 2/2 (the leader) and the others 1/2", func() error {
		return readyCounts(ns, name, leader, replicas)
	})
	waitFor(t, 2*progressDeadline*time.Second, "the Deployment's verdict on the first rollout", func() error {
		return progressVerdict(deployment(t, ns, name))
	})
	d := deployment(t, ns, name)
	if err := rolledOut(d); err == nil {
		t.Fatalf("kubectl rollout status would succeed: %+v", d.Status)
	}
	t.Logf("after the create: %s; Available=%s, Progressing=%s", func() string { return rolledOut(d).Error() }(), condition(d, appsv1.DeploymentAvailable), condition(d, appsv1.DeploymentProgressing))
	results.note("leader port, %s: after the first create, rollout status %q; Available=%s; Progressing=%s",
		label, rolledOut(d).Error(), condition(d, appsv1.DeploymentAvailable), condition(d, appsv1.DeploymentProgressing))

	// kubectl rollout restart.
	oldPods := podNames(t, ns, name)
	t0 := time.Now()
	restart(t, ns, name)
	oldRS := d.Status.ObservedGeneration
	if deadlock {
		// The new pod is a follower, never Ready; the old leader is never
		// taken away: the Deployment controller gives up.
		waitFor(t, 3*progressDeadline*time.Second, "ProgressDeadlineExceeded", func() error {
			d := deployment(t, ns, name)
			if d.Status.ObservedGeneration <= oldRS {
				return fmt.Errorf("the restart is not observed yet")
			}
			if c := condition(d, appsv1.DeploymentProgressing); !strings.Contains(c, "ProgressDeadlineExceeded") {
				return fmt.Errorf("Progressing=%s", c)
			}
			return nil
		})
		if h := holder.last().value; h != leader {
			t.Fatalf("the lease moved from %s to %s: the rollout was not stuck", leader, h)
		}
		d := deployment(t, ns, name)
		results.note("leader port, %s: rollout restart stuck: after %v the Deployment reports ProgressDeadlineExceeded; %d of %d updated, the old leader %s still leads",
			label, time.Since(t0).Round(time.Second), d.Status.UpdatedReplicas, replicas, leader)
		return
	}
	// The old pods go, the new ones come, and one of them leads. (An old
	// follower whose pod is being deleted may lead for a moment in between,
	// until its preStop hook withdraws it.)
	isOld := func(pod string) bool { return slices.Contains(oldPods, pod) }
	newLeader := holder.await(t, t0, 120*time.Second, "a new pod to lead", func(v string) bool { return v != "" && !isOld(v) })
	ready := eps.await(t, newLeader.at, 120*time.Second, "the new leader Ready", func(v string) bool { return v == newLeader.value })
	waitFor(t, 120*time.Second, "the old pods to be gone", func() error {
		d := deployment(t, ns, name)
		if d.Status.UpdatedReplicas != int32(replicas) || d.Status.Replicas != int32(replicas) {
			return fmt.Errorf("%d replicas, %d updated", d.Status.Replicas, d.Status.UpdatedReplicas)
		}
		return readyCounts(ns, name, newLeader.value, replicas)
	})
	gap, _ := eps.longestGap(t0, ready.at)
	_, changes := holder.longestGap(t0, ready.at)
	results.note("leader port, %s: during the rollout the lease changed hands %d times before a new pod led", label, changes+1)
	results.add("leader port, "+label+": rollout restart → new leader Ready", ready.at.Sub(t0))
	results.add("leader port, "+label+": rollout restart, longest time with no Ready pod", gap)
	d = deployment(t, ns, name)
	results.note("leader port, %s: rollout restart went through: new leader Ready %v after the restart, no Ready pod for %v; rollout status still %q; Available=%s",
		label, ready.at.Sub(t0).Round(time.Millisecond), gap.Round(time.Millisecond), rolledOut(d), condition(d, appsv1.DeploymentAvailable))
}

// readyCounts checks the pattern's signature: the leader's pod has every
// container ready (2/2), every other pod all but the sidecar (1/2).
func readyCounts(ns, app, leader string, replicas int) error {
	pods, err := node.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return err
	}
	if len(pods.Items) != replicas {
		return fmt.Errorf("%d pods, want %d", len(pods.Items), replicas)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			return fmt.Errorf("pod %s is terminating", p.Name)
		}
		ready, total := 0, 0
		for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			total++
			if s.Ready {
				ready++
			}
		}
		want := 1
		if p.Name == leader {
			want = 2
		}
		if ready != want || total != 2 {
			return fmt.Errorf("pod %s is %d/%d, want %d/2", p.Name, ready, total, want)
		}
	}
	return nil
}

// progressVerdict succeeds once the Deployment controller has judged the
// rollout: complete, or past its progress deadline.
func progressVerdict(d *appsv1.Deployment) error {
	c := condition(d, appsv1.DeploymentProgressing)
	if strings.Contains(c, "NewReplicaSetAvailable") || strings.Contains(c, "ProgressDeadlineExceeded") {
		return nil
	}
	return fmt.Errorf("Progressing=%s", c)
}

// condition renders a Deployment condition as Status/Reason.
func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) string {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "absent"
}

// shippedExample reads a manifest of deploy/examples as shipped, on this
// node: its namespace, the node's incumbent image, and the tier's app
// (serving on 8080) in place of the placeholder application image.
func shippedExample(t *testing.T, ns, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "deploy", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		`namespace: "default"`, `namespace: "`+ns+`"`,
		"namespace: default", "namespace: "+ns,
		buildinfoImageLatest, incumbentImage,
		"image: registry.example/app:latest", "image: "+appImage+"\n          args: [serve]",
	).Replace(string(b))
	return []byte(s)
}

// The image the examples name.
const buildinfoImageLatest = "ghcr.io/incumbent-io/incumbent:latest"

// podNames lists the names of the app's pods.
func podNames(t *testing.T, ns, app string) []string {
	t.Helper()
	pods, err := node.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}
