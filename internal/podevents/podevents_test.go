package podevents

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
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

// A refused permission is recorded as a Warning event once per distinct
// message, however often the sidecar retries.
func TestRefusedOncePerMessage(t *testing.T) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ev-refused"},
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
		Options{Namespace: "default", Pod: "ev-refused", Lease: "default/ev", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"refused a", "refused a", "refused b", "refused a"} {
		r.Refused(m)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.Wait(wctx)
	list, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=ev-refused"})
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
	want := []string{"Warning PermissionDenied refused a", "Warning PermissionDenied refused b"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// When the events themselves are refused, that is logged once at warn
// level, and later only at debug level.
func TestRefusedEventCreateIsLoggedOnce(t *testing.T) {
	cfg, err := env.User("no-events")
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r, err := New(kc.Events("default"), kc.Pods("default"), Options{Namespace: "default", Pod: "ev-forbidden", Lease: "default/ev",
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range []string{"refused a", "refused b", "refused c"} {
		r.Refused(m)
		r.Wait(wctx) // one at a time: the first refusal is the one logged at warn level
	}
	out := logs.String()
	warn := strings.Count(out, `"level":"WARN","msg":"could not record an event on the pod"`)
	debug := strings.Count(out, `"level":"DEBUG","msg":"could not record an event on the pod"`)
	if warn != 1 || debug != 2 || !strings.Contains(out, `refused verb \"create\" on resource \"events\"`) {
		t.Errorf("%d warnings and %d debug lines (want 1 and 2, naming the refused create on events):\n%s", warn, debug, out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
