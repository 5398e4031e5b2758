package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// TestRejectedCredentialsAreNotARefusedVerb: a 401 (the token is not, or no
// longer, accepted: a pod's bound token once its pod object is deleted) is
// reported as rejected credentials, not as a missing RBAC permission, which
// would send the operator to the Role for nothing.
func TestRejectedCredentialsAreNotARefusedVerb(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.BearerToken, cfg.BearerTokenFile = "not-a-valid-token", ""
	cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile = nil, nil, "", ""
	st, err := kube.New(cfg, "default", "rejected-credentials", kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(context.Background())
	if !errors.Is(err, store.ErrCredentials) || !errors.Is(err, store.ErrPermission) {
		t.Fatalf("Get with a rejected token: %v, want store.ErrCredentials (and so store.ErrPermission)", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "refused verb") || !strings.Contains(msg, "rejected the credentials") || !strings.Contains(msg, "pod object is deleted") {
		t.Fatalf("Get with a rejected token: %q: want it to say the credentials were rejected (and why a pod's may be), not that a verb was refused", msg)
	}
}
