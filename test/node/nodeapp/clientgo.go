package main

import (
	"context"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// clientGo campaigns for LEASE with client-go's leaderelection, default
// timings (15s/10s/2s) and ReleaseOnCancel, and labels its own pod
// incumbent.io/role=leader while it leads (follower otherwise), until a
// signal; then it releases the lease.
func clientGo(sigs <-chan os.Signal) error {
	ns, pod, lease := os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME"), os.Getenv("LEASE")
	if ns == "" || pod == "" || lease == "" {
		return fmt.Errorf("POD_NAMESPACE, POD_NAME and LEASE must be set")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	label := func(role string) {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"incumbent.io/role":%q}}}`, role)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cs.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "clientgo: label:", err)
		}
	}
	label("follower")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sigs; cancel() }()
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: lease, Namespace: ns},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: pod},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { label("leader") },
			OnStoppedLeading: func() { fmt.Fprintln(os.Stderr, "clientgo: stopped leading") },
		},
	})
	return nil
}
