package writegate_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/testenv"
	"github.com/incumbent-io/incumbent/store/kube"
	"github.com/incumbent-io/incumbent/writegate"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// write is one write of the stray goroutine: whether the term had already
// ended when it began, and its outcome.
type write struct {
	i     int
	after bool
	err   error
}

// TestAStrayGoroutineCannotWriteAfterTheTerm runs a controller-like leader
// on the real API server: its background goroutine writes a ConfigMap
// through a gated client without ever looking at the term. The term ends
// when an administrator takes the Lease over. Every write begun after the
// end is refused locally, wrapping ErrTermEnded and the term's reason, and
// none reaches the API server; reads through the same client go on.
func TestAStrayGoroutineCannotWriteAfterTheTerm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns, lease, cmName = "default", "gate", "controller-state"
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kube.New(env.Config, ns, lease, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}

	const afterEnd = 50 // writes the goroutine makes once it has seen the end
	writes := make(chan write, 1000)
	writing := make(chan struct{}) // closed once writes were accepted
	var gated *kubernetes.Clientset
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	e, err := election.New(election.Config{
		Store: st, Identity: "controller-a",
		Lead: func(term *election.Term) {
			cs, err := kubernetes.NewForConfig(writegate.Config(term, env.Config))
			if err != nil {
				t.Error(err)
				return
			}
			gated = cs
			go func() { // the stray goroutine: it never looks at the term
				defer close(writes)
				cms := cs.CoreV1().ConfigMaps(ns)
				seen, accepted := 0, 0
				for i := 0; seen < afterEnd; i++ {
					after := term.Err() != nil
					if after {
						seen++
					}
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName}, Data: map[string]string{"i": strconv.Itoa(i)}}
					_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
					if apierrors.IsNotFound(err) {
						_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
					}
					writes <- write{i: i, after: after, err: err}
					if err == nil {
						if accepted++; accepted == 20 {
							close(writing)
						}
					}
				}
			}()
			<-term.Done()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- e.Run(runCtx) }()

	select {
	case <-writing:
	case <-ctx.Done():
		t.Fatal("the leader's writes were not accepted")
	}
	// An administrator takes the Lease over: the term ends with ErrLeaseLost.
	l, err := admin.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, transitions := "someone-else", *l.Spec.LeaseTransitions+1
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions = &other, &transitions
	if _, err := admin.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	lastBefore, refused := -1, 0
	for w := range writes {
		switch {
		case !w.after && w.err == nil:
			lastBefore = w.i
		case !w.after: // the term may have ended while it was under way
			if !errors.Is(w.err, writegate.ErrTermEnded) {
				t.Errorf("write %d, during the term: %v", w.i, w.err)
			}
		case !errors.Is(w.err, writegate.ErrTermEnded) || !errors.Is(w.err, election.ErrLeaseLost):
			t.Errorf("write %d, begun after the term ended: %v, want an error wrapping ErrTermEnded and ErrLeaseLost", w.i, w.err)
		default:
			refused++
		}
	}
	t.Logf("%d writes begun after the term ended, %d refused locally; the last write accepted was #%d", afterEnd, refused, lastBefore)

	// The API server has the last write accepted before the end, and the
	// gated client still reads.
	cm, err := gated.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a read through the gated client after the term: %v", err)
	}
	if got := cm.Data["i"]; got != strconv.Itoa(lastBefore) {
		t.Errorf("the API server holds write #%s, want #%d, the last one begun during the term", got, lastBefore)
	}
	if _, err := gated.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("a list through the gated client after the term: %v", err)
	}
	w, err := gated.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("a watch through the gated client after the term: %v", err)
	} else {
		w.Stop()
	}
	stop()
	<-ran
}
