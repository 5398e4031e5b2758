package podlabel

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/testenv"
	"github.com/incumbent-io/incumbent/store/memory"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const ns = "default"

func admin(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// pods is the client the binary uses, on cfg.
func pods(t *testing.T, cfg *rest.Config) Pods {
	t.Helper()
	kc, err := kubeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kc.Pods(ns)
}

func createPod(t *testing.T, cs *kubernetes.Clientset, name string, lbls map[string]string) {
	t.Helper()
	_, err := cs.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func roles(t *testing.T, cs *kubernetes.Clientset, names ...string) string {
	t.Helper()
	var out []string
	for _, n := range names {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n+"="+p.Labels[LabelRole]+"/"+p.Labels[LabelLease])
	}
	return strings.Join(out, " ")
}

// eventually polls cond until it holds, up to a deadline.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; last state: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a bounded wait
	}
}

func TestLabelsFollowTheTermAndStaleLeadersAreDemoted(t *testing.T) {
	cs := admin(t)
	createPod(t, cs, "lbl-a", nil)
	createPod(t, cs, "lbl-dead", map[string]string{LabelRole: RoleLeader, LabelLease: "lbl"})
	createPod(t, cs, "lbl-other-lease", map[string]string{LabelRole: RoleLeader, LabelLease: "another"})

	l, err := New(pods(t, env.Config), "lbl-a", "lbl", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	terms := make(chan *election.Term, 1)
	e, err := election.New(election.Config{Store: memory.New("lbl"), Identity: "lbl-a", Logger: slog.New(slog.DiscardHandler),
		Lead: func(term *election.Term) { terms <- term; l.Lead(term) }})
	if err != nil {
		t.Fatal(err)
	}
	lctx, stopLabels := context.WithCancel(context.Background())
	ectx, stopElector := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(lctx) })
	wg.Go(func() { _ = e.Run(ectx) })

	term := <-terms
	want := "lbl-a=leader/lbl lbl-dead=follower/lbl lbl-other-lease=leader/another"
	eventually(t, "leader labelled and stale leader demoted", func() (bool, string) {
		got := roles(t, cs, "lbl-a", "lbl-dead", "lbl-other-lease")
		return got == want, got
	})
	term.Resign()
	stopElector()
	eventually(t, "former leader labelled follower", func() (bool, string) {
		got := roles(t, cs, "lbl-a")
		return got == "lbl-a=follower/lbl", got
	})
	stopLabels()
	wg.Wait()
}

func TestShutdownLabelsFollower(t *testing.T) {
	cs := admin(t)
	createPod(t, cs, "bye-a", map[string]string{LabelRole: RoleLeader, LabelLease: "bye"})
	l, err := New(pods(t, env.Config), "bye-a", "bye", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run's only work: the final follower label
	l.Run(ctx)
	if got := roles(t, cs, "bye-a"); got != "bye-a=follower/bye" {
		t.Errorf("after shutdown: %s", got)
	}
}

func TestCheckNamesTheProblem(t *testing.T) {
	cs := admin(t)
	l, err := New(pods(t, env.Config), "no-such-pod", "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), `get pod "no-such-pod"`) {
		t.Errorf("Check for a missing pod = %v", err)
	}

	createPod(t, cs, "chk-a", nil)
	cfg, err := env.User("podlabel-nobody")
	if err != nil {
		t.Fatal(err)
	}
	// May read pods, nothing else.
	ctx := context.Background()
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "podlabel-read"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "podlabel-read"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "podlabel-read"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "podlabel-nobody"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err = New(pods(t, cfg), "chk-a", "chk", nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "RBAC binding effective", func() (bool, string) {
		err := l.Check(ctx)
		return err == nil, fmt.Sprint(err)
	})
	err = l.patch(ctx, "chk-a", "", RoleLeader)
	if err == nil || !strings.Contains(err.Error(), `refused verb "patch" on resource "pods"`) {
		t.Errorf("patch without permission = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(nil, "", "x", nil); err == nil || !strings.Contains(err.Error(), "pod name is empty") {
		t.Errorf("empty pod: %v", err)
	}
	long := strings.Repeat("a", 64)
	if _, err := New(nil, "p", long, nil); err == nil || !strings.Contains(err.Error(), "cannot be a label value") {
		t.Errorf("64-character lease: %v", err)
	}
}
