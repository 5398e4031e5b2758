package podevents

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/testenv"
	"github.com/incumbent-io/incumbent/store/memory"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestEventsForEachTerm(t *testing.T) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ev-a"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubeclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(kc.Events("default"), kc.Pods("default"),
		Options{Namespace: "default", Pod: "ev-a", Lease: "default/ev", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	e, err := election.New(election.Config{Store: memory.New("ev"), Identity: "ev-a", Logger: slog.New(slog.DiscardHandler),
		Lead: func(term *election.Term) {
			go term.Resign()
			r.Lead(term)
			stop()
		}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = e.Run(rctx) }()
	<-done
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.Wait(wctx)

	list, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=ev-a"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.UID != pod.UID {
			t.Errorf("event %s has UID %q, want the pod's %q", ev.Name, ev.InvolvedObject.UID, pod.UID)
		}
		got = append(got, ev.Type+" "+ev.Reason+" "+ev.Message)
	}
	sort.Strings(got)
	want := []string{
		"Normal LeaderElected ev-a became leader of lease default/ev, term 1",
		"Normal LeaderSteppedDown ev-a stepped down as leader of lease default/ev, term 1: leader resigned",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(nil, nil, Options{Namespace: "default"}); err == nil {
		t.Error("New without a pod name succeeded")
	}
}
