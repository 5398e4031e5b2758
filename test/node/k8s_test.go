//go:build node

package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
)

func port(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }

// newNamespace creates a namespace for the test, deleted (with its pods) at
// its end; the name is derived from the test's.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-")
	cs := node.Client()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// The namespace's default service account, which pods need to be admitted.
	waitFor(t, 30*time.Second, "the default service account of "+name, func() error {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	t.Cleanup(func() {
		zero := int64(0)
		_ = cs.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// waitFor polls check every 50ms until it succeeds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll(d, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// poll calls check every 50ms until it succeeds, or returns its last error
// after d. It polls the API server: tests that need the moment of a
// change watch instead.
func poll(d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the API server
	}
}

func podReady(p *corev1.Pod) error {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("pod %s not Ready (phase %s)", p.Name, p.Status.Phase)
}

// waitPod watches a pod until cond holds for it.
func waitPod(t *testing.T, ns, name string, d time.Duration, cond func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cs := node.Client()
	var last error
	for ctx.Err() == nil {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			last = err
			continue
		}
		if len(list.Items) == 1 {
			if last = cond(&list.Items[0]); last == nil {
				return &list.Items[0]
			}
		}
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: list.ResourceVersion})
		if err != nil {
			last = err
			continue
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted {
				if last = cond(p); last == nil {
					w.Stop()
					return p
				}
			}
		}
	}
	t.Fatalf("pod %s/%s: %v (last: %v)", ns, name, ctx.Err(), last)
	return nil
}
