//go:build node

package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodRuns: a pod of the tier's own image becomes Ready on the node.
func TestPodRuns(t *testing.T) {
	ctx := context.Background()
	cs := node.Client()
	ns := newNamespace(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: appImage, Args: []string{"serve"},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: port(8080)}}, PeriodSeconds: 1},
		}}},
	}
	t0 := time.Now()
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "smoke", 60*time.Second, podReady)
	t.Logf("pod Ready %v after its creation", time.Since(t0))
}
