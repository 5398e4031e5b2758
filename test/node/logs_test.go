//go:build node

package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// collectLogs follows the logs of every container of every pod in ns, as
// kubectl logs -f --timestamps would, into logs/<ns>/<pod>.<container>.<restart>.log
// under the work folder, so that they outlive the pods; it returns that folder.
func collectLogs(t *testing.T, ns string) string {
	dir := filepath.Join(workDir, "logs", ns)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	api := node.Client().CoreV1().Pods(ns)
	started := map[string]bool{}
	follow := func(p *corev1.Pod) {
		statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
		for _, s := range statuses {
			key := fmt.Sprintf("%s.%s.%d", p.Name, s.Name, s.RestartCount)
			if s.State.Running == nil || started[key] {
				continue
			}
			started[key] = true
			wg.Add(1)
			go func(pod, container, key string) {
				defer wg.Done()
				f, err := os.Create(filepath.Join(dir, key+".log"))
				if err != nil {
					return
				}
				defer f.Close()
				rc, err := api.GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true, Timestamps: true}).Stream(ctx)
				if err != nil {
					fmt.Fprintf(f, "(logs: %v)\n", err)
					return
				}
				defer rc.Close()
				_, _ = io.Copy(f, rc)
			}(p.Name, s.Name, key)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchLoop(ctx, func() (string, error) {
			l, err := api.List(ctx, metav1.ListOptions{})
			if err != nil {
				return "", err
			}
			for i := range l.Items {
				follow(&l.Items[i])
			}
			return l.ResourceVersion, nil
		}, func(rv string) (watch.Interface, error) {
			return api.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		}, func(ev watch.Event) {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				follow(p)
			}
		})
	}()
	return dir
}
