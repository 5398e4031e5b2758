package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func createPod(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	_, err := admin.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// leaderPods lists the pods of lease labelled leader, and the holder.
func leaderPods(t *testing.T, lease string) ([]string, string) {
	t.Helper()
	ctx := context.Background()
	pods, err := admin.CoreV1().Pods("default").List(ctx, metav1.ListOptions{
		LabelSelector: "incumbent.io/lease=" + lease + ",incumbent.io/role=leader"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	l, err := admin.CoordinationV1().Leases("default").Get(ctx, lease, metav1.GetOptions{})
	if err != nil {
		return names, ""
	}
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return names, holder
}

// TestPodLabelsAndStaleLeaderCleanup creates pods (objects only: no
// kubelet) for three sidecars with --label-pod --events, plus a pod left
// labelled leader by a dead leader. The leader's pod alone must be labelled
// leader; after the leader process is SIGKILLed (its label goes stale), the
// next leader must demote it. Events record each term.
func TestPodLabelsAndStaleLeaderCleanup(t *testing.T) {
	for _, name := range []string{"pl-a", "pl-b", "pl-c"} {
		createPod(t, "default", name, map[string]string{"app": "pl"})
	}
	createPod(t, "default", "pl-dead", map[string]string{"app": "pl", "incumbent.io/lease": "pl", "incumbent.io/role": "leader"})
	procs := map[string]*proc{}
	for _, name := range []string{"pl-a", "pl-b", "pl-c"} {
		procs[name] = sidecar(t, "pl", name, []string{"POD_NAME=" + name}, "--label-pod", "--events")
	}
	exactlyHolder := func(what, not string) string {
		var holder string
		eventually(t, what, func() (bool, string) {
			var leaders []string
			leaders, holder = leaderPods(t, "pl")
			return holder != "" && holder != not && len(leaders) == 1 && leaders[0] == holder,
				fmt.Sprintf("labelled leader: %v, holder %q", leaders, holder)
		})
		return holder
	}
	first := exactlyHolder("only the holder's pod labelled leader, pl-dead demoted", "")
	dead, err := admin.CoreV1().Pods("default").Get(context.Background(), "pl-dead", metav1.GetOptions{})
	if err != nil || dead.Labels["incumbent.io/role"] != "follower" {
		t.Errorf("pl-dead labels: %v (%v)", dead.Labels, err)
	}

	procs[first].signal(syscall.SIGKILL) // its pod keeps the leader label
	procs[first].wait()
	second := exactlyHolder("the next leader demoted the killed leader's pod", first)
	if second == first {
		t.Fatalf("%s still holds the lease after being killed", first)
	}

	procs[second].signal(syscall.SIGTERM)
	if code := procs[second].wait(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM", second, code)
	}
	exactlyHolder("the third leader labelled leader, the second relabelled follower on exit", second)
	p, err := admin.CoreV1().Pods("default").Get(context.Background(), second, metav1.GetOptions{})
	if err != nil || p.Labels["incumbent.io/role"] != "follower" {
		t.Errorf("%s after SIGTERM: labels %v (%v)", second, p.Labels, err)
	}

	evs, err := admin.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + second})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason+": "+e.Message)
	}
	got := strings.Join(reasons, "\n")
	if !strings.Contains(got, "LeaderElected: "+second+" became leader of lease default/pl") ||
		!strings.Contains(got, "LeaderSteppedDown: "+second+" stepped down") {
		t.Errorf("events of %s:\n%s", second, got)
	}
}

// A sidecar that wins at once labels its pod leader, and never follower
// first: the labels a watch of the pod sees go straight to leader.
func TestNewLeaderIsNeverLabelledFollowerFirst(t *testing.T) {
	for round := range 3 {
		lease := fmt.Sprintf("pl-first-%d", round)
		pod := lease + "-a"
		createPod(t, "default", pod, map[string]string{"app": lease})
		ctx, cancel := context.WithCancel(context.Background())
		w, err := admin.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod})
		if err != nil {
			t.Fatal(err)
		}
		p := sidecar(t, lease, pod, []string{"POD_NAME=" + pod}, "--label-pod")
		var roles []string
		deadline := time.After(wait)
	watch:
		for {
			var ev watch.Event
			select {
			case ev = <-w.ResultChan():
			case <-deadline:
				t.Fatalf("round %d: %s not labelled leader within %v (roles so far %v)", round, pod, wait, roles)
			}
			pp, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if r, ok := pp.Labels["incumbent.io/role"]; ok && (len(roles) == 0 || roles[len(roles)-1] != r) {
				roles = append(roles, r)
			}
			if len(roles) > 0 && roles[len(roles)-1] == "leader" {
				break watch
			}
		}
		cancel()
		if len(roles) == 0 || roles[0] != "leader" {
			t.Errorf("round %d: the winning pod's role labels went %v; want leader first", round, roles)
		}
		p.signal(syscall.SIGTERM)
		p.wait()
	}
}
