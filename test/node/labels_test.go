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

// appManifest is a plain application, as a user would have it before
// incumbent: a Deployment of the tier's app image running args.
func appManifest(ns, name string, replicas int, args ...string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[5]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: app
          image: %[3]s
          args: [%[4]s]
          ports: [{name: http, containerPort: 8080}]
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
`, name, replicas, appImage, strings.Join(args, ", "), ns)
}

// TestLabelRouting is the recommended pattern: three replicas with the
// injected sidecar in label mode and the leader Service. Every pod is
// Ready, one is labelled leader and is the Service's only endpoint; after
// the leader pod is deleted, and through a rollout restart, that stays
// true.
func TestLabelRouting(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, inject(t, "web", "labels", appManifest(ns, "web", 3, "serve")))
	routing(t, ns, "web", "web-leader", "web", "incumbent")
}

// TestLabelRoutingClientGo is the same with a sidecar built on client-go's
// leaderelection (ReleaseOnCancel, default timings), for comparison.
func TestLabelRoutingClientGo(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, []byte(clientGoManifest(ns, "web-cg")))
	routing(t, ns, "web-cg", "web-cg-leader", "web-cg", "client-go")
}

// routing checks and times the label pattern of one implementation.
func routing(t *testing.T, ns, name, svc, lease, impl string) {
	t.Logf("logs: %s", collectLogs(t, ns))
	eps := watchEndpoints(t, ns, svc)
	holder := watchHolder(t, ns, lease)
	waitFor(t, 120*time.Second, "the Deployment to roll out", func() error { return rolledOut(deployment(t, ns, name)) })
	leader := oneLeader(t, ns, name, eps, holder)
	cs := node.Client()
	for i := range *deletions {
		t0 := time.Now()
		if err := cs.CoreV1().Pods(ns).Delete(context.Background(), leader, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete the leader pod %s: %v", leader, err)
		}
		old := leader
		h := holder.await(t, t0, 60*time.Second, "another holder of the lease", func(v string) bool { return v != "" && v != old })
		m := eps.await(t, t0, 60*time.Second, "another pod as the only ready endpoint", func(v string) bool {
			return v != "" && v != old && !strings.Contains(v, ",")
		})
		results.add(impl+": leader pod deleted → lease holder changed", h.at.Sub(t0))
		results.add(impl+": leader pod deleted → new leader's endpoint ready", m.at.Sub(t0))
		gap, _ := eps.longestGap(t0, m.at)
		results.add(impl+": no ready leader endpoint, per deletion", gap)
		onlyOne(t, eps, t0, m.at, "the hand-over")
		waitFor(t, 120*time.Second, "the Deployment to roll out again", func() error { return rolledOut(deployment(t, ns, name)) })
		leader = oneLeader(t, ns, name, eps, holder)
		if leader != m.value {
			t.Fatalf("deletion %d: the endpoint went to %s, but the leader is now %s", i, m.value, leader)
		}
	}

	// kubectl rollout restart, with the default RollingUpdate strategy (and,
	// for incumbent, its PodDisruptionBudget).
	t0 := time.Now()
	restart(t, ns, name)
	waitFor(t, 180*time.Second, "the rollout restart to complete", func() error { return rolledOut(deployment(t, ns, name)) })
	took := time.Since(t0)
	oneLeader(t, ns, name, eps, holder) // and still exactly one, routed to
	gap, changes := eps.longestGap(t0, time.Now())
	onlyOne(t, eps, t0, time.Now(), "the rollout")
	results.add(impl+": rollout restart, longest time without a ready leader endpoint", gap)
	results.add(impl+": rollout restart, until complete", took)
	results.note("%s: rollout restart of 3 replicas completed in %v with %d leader changes; longest time without a ready leader endpoint %v",
		impl, took.Round(time.Millisecond), changes, gap.Round(time.Millisecond))
}

// oneLeader waits until the Deployment's pods are all Ready, exactly one of
// them is labelled leader, it holds the lease, and it is the Service's only
// ready endpoint; it returns that pod's name.
func oneLeader(t *testing.T, ns, app string, eps, holder *timeline) string {
	t.Helper()
	var leader string
	waitFor(t, 60*time.Second, "exactly one leader pod, holding the lease and the only endpoint", func() error {
		pods, err := node.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err
		}
		var leaders []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s is still terminating", p.Name)
			}
			if err := podReady(&p); err != nil {
				return err
			}
			if p.Labels["incumbent.io/role"] == "leader" {
				leaders = append(leaders, p.Name)
			}
		}
		if len(pods.Items) != 3 || len(leaders) != 1 {
			return fmt.Errorf("%d pods, labelled leader: %v", len(pods.Items), leaders)
		}
		leader = leaders[0]
		if h := holder.last().value; h != leader {
			return fmt.Errorf("the lease is held by %q, the pod labelled leader is %s", h, leader)
		}
		if e := eps.last().value; e != leader {
			return fmt.Errorf("the Service's ready endpoints are %q, the leader is %s", e, leader)
		}
		return nil
	})
	return leader
}

// clientGoManifest is the baseline: the same application with a native
// sidecar built on client-go's leaderelection (nodeapp clientgo) that labels
// its pod leader, its RBAC, and the leader Service.
func clientGoManifest(ns, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: %[1]s}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, create, update]
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[1]s}
subjects: [{kind: ServiceAccount, name: %[1]s, namespace: %[2]s}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s-leader}
spec:
  selector: {app: %[1]s, incumbent.io/role: leader}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 3
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      serviceAccountName: %[1]s
      terminationGracePeriodSeconds: 10
      initContainers:
        - name: leader-elector
          image: %[3]s
          restartPolicy: Always
          args: [clientgo]
          env:
            - {name: LEASE, value: %[1]s}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
      containers:
        - name: app
          image: %[3]s
          args: [serve]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /, port: http}
            periodSeconds: 1
`, name, ns, appImage)
}

// onlyOne fails the test if the Service listed more than one ready pod at
// any moment of [from, to].
func onlyOne(t *testing.T, eps *timeline, from, to time.Time, during string) {
	t.Helper()
	for _, v := range eps.values(from, to) {
		if strings.Contains(v, ",") {
			t.Errorf("during %s the leader Service listed several ready pods at once: %s", during, v)
		}
	}
}
