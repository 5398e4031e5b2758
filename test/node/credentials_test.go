//go:build node

package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestInClusterCredentials: the sidecar uses its pod's projected
// service-account token and the Role incumbent rbac generates (inject adds
// both), nothing else. With one permission missing from that Role, it says
// which in its log and in an Event on its pod, and keeps running (no crash
// loop); once the Role is fixed it leads, without a restart.
func TestInClusterCredentials(t *testing.T) {
	ns := newNamespace(t)
	logs := collectLogs(t, ns)
	full := inject(t, "creds", "status", appManifest(ns, "creds", 1, "serve"))
	const leaseRule = `verbs: ["get", "update"]`
	if !strings.Contains(string(full), leaseRule) {
		t.Fatalf("inject's Role has no rule %s:\n%s", leaseRule, full)
	}
	// The Deployment's pods use the sidecar's own service account, whose
	// token reaches the sidecar alone, through its projected volume.
	apply(t, ns, []byte(strings.Replace(string(full), leaseRule, `verbs: ["get"]`, 1)))
	var pod corev1.Pod
	waitFor(t, 60*time.Second, "the pod to run", func() error {
		pods, err := node.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=creds"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodRunning {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		pod = pods.Items[0]
		return nil
	})
	if pod.Spec.ServiceAccountName != "incumbent-creds" {
		t.Errorf("the pod runs as service account %q, want inject's incumbent-creds", pod.Spec.ServiceAccountName)
	}
	// The refusal, in an Event on the pod (kubectl describe) ...
	waitFor(t, 60*time.Second, "a Warning Event on the pod naming the refused verb", func() error {
		evs, err := node.Client().CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, `"update"`) && strings.Contains(e.Message, "leases") {
				t.Logf("event %s: %s", e.Reason, e.Message)
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("events: %q", seen)
	})
	// ... and in its log, more than once: it waits and checks again.
	logFile := filepath.Join(logs, pod.Name+".incumbent.0.log")
	waitFor(t, 60*time.Second, "the sidecar's log to name the refused verb twice", func() error {
		b, err := os.ReadFile(logFile)
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), `verb \"update\" on resource \"leases\"`); n < 2 {
			return fmt.Errorf("%d log lines name it", n)
		}
		return nil
	})
	restarts := func() int32 {
		p, err := node.Client().CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == "incumbent" {
				if s.State.Running == nil {
					t.Fatalf("the sidecar is not running: %+v", s.State)
				}
				return s.RestartCount
			}
		}
		t.Fatal("no sidecar status")
		return 0
	}
	if n := restarts(); n != 0 {
		t.Fatalf("the sidecar restarted %d times: it crash-loops", n)
	}
	// Fix the Role: the sidecar leads, in the same container.
	t0 := time.Now()
	apply(t, ns, full)
	holder := watchHolder(t, ns, "creds")
	h := holder.await(t, t0, 60*time.Second, "the sidecar to lead", func(v string) bool { return v == pod.Name })
	if n := restarts(); n != 0 {
		t.Fatalf("the sidecar restarted %d times", n)
	}
	results.note("credentials: with update on leases missing, the sidecar named it in an Event and its log and kept running; it led %v after the Role was fixed, without a restart", h.at.Sub(t0).Round(time.Millisecond))
}
