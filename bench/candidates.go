package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/kube"
)

// profile is one set of election timings.
type profile struct {
	name                string
	lease, renew, retry time.Duration
	grace               time.Duration
}

var (
	defaultProfile = profile{"default 15s/10s/2s", 15 * time.Second, 10 * time.Second, 2 * time.Second, 4 * time.Second}
	shortProfile   = profile{"short 3s/2s/0.5s", 3 * time.Second, 2 * time.Second, 500 * time.Millisecond, 500 * time.Millisecond}
)

// impl starts candidates of one leader-election implementation.
type impl interface {
	name() string
	// start runs a candidate until stop is called; stop releases the lease
	// if the implementation does that on cancel, and returns once the
	// candidate is gone. onLead is called when a term starts.
	start(cfg *rest.Config, ns, lease, id string, p profile, onLead func(id string)) (stop func(), err error)
}

type incumbentImpl struct{}

func (incumbentImpl) name() string { return "incumbent" }

func (incumbentImpl) start(cfg *rest.Config, ns, lease, id string, p profile, onLead func(string)) (func(), error) {
	st, err := kube.New(cfg, ns, lease, kube.Options{UserAgent: "bench-incumbent"})
	if err != nil {
		return nil, err
	}
	e, err := election.New(election.Config{
		Store: st, Identity: id,
		LeaseDuration: p.lease, RenewDeadline: p.renew, RetryPeriod: p.retry, Grace: p.grace,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Lead: func(t *election.Term) {
			onLead(id)
			<-t.Done()
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			fmt.Println("incumbent candidate:", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

type clientGoImpl struct{}

func (clientGoImpl) name() string { return "client-go" }

func (clientGoImpl) start(cfg *rest.Config, ns, lease, id string, p profile, onLead func(string)) (func(), error) {
	c := rest.CopyConfig(cfg)
	c.UserAgent = "bench-client-go"
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, err
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: lease},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		},
		LeaseDuration: p.lease, RenewDeadline: p.renew, RetryPeriod: p.retry,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { onLead(id) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(ctx) // one-shot: returns after losing or being cancelled
	}()
	return func() { cancel(); <-done }, nil
}
