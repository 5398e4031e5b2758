package rbac

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrMissing is wrapped by Check's error when a permission is missing.
var ErrMissing = errors.New("missing RBAC permissions")

// ErrCannotCheck is wrapped by Check's error when the API server would not
// answer the access reviews themselves; the caller may go on and let the
// first real request tell.
var ErrCannotCheck = errors.New("cannot check RBAC permissions")

// Reviews creates self subject access reviews, as client-go's typed
// SelfSubjectAccessReviewInterface and kubeclient.Reviews do.
type Reviews interface {
	Create(ctx context.Context, review *authorizationv1.SelfSubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SelfSubjectAccessReview, error)
}

// Check asks the API server (SelfSubjectAccessReview, allowed to every
// authenticated user) whether the caller holds every permission of Rules(o).
// It returns an error wrapping ErrMissing that names each missing required
// verb, resource and namespace, with the command that prints the needed
// Role; and, apart, the optional permissions that are missing (the sidecar
// works without them), each described the same way and saying what the
// sidecar does without it.
func Check(ctx context.Context, reviews Reviews, o Options) (optional []string, err error) {
	var missing []string
	for _, r := range Rules(o) {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, verb := range r.Verbs {
			for _, name := range names {
				review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: o.Namespace, Verb: verb, Group: r.APIGroup, Resource: r.Resource, Name: name,
					}}}
				got, err := reviews.Create(ctx, review, metav1.CreateOptions{})
				if err != nil {
					return nil, fmt.Errorf("%w: self subject access review: %w", ErrCannotCheck, err)
				}
				switch {
				case got.Status.Allowed:
				case r.Optional:
					optional = append(optional, describe(verb, r, name, o.Namespace)+" (without it "+r.Without+")")
				default:
					missing = append(missing, describe(verb, r, name, o.Namespace))
				}
			}
		}
	}
	if len(missing) == 0 {
		return optional, nil
	}
	return optional, fmt.Errorf("%w: the API server would refuse %s; print the Role this sidecar needs with: %s",
		ErrMissing, strings.Join(missing, "; "), Command(o))
}

// Command returns the `incumbent rbac` command line that prints the Role a
// sidecar deployed as o needs, with a placeholder for the service account.
func Command(o Options) string {
	cmd := fmt.Sprintf("incumbent rbac --lease %s -n %s --service-account <name>", strings.Join(o.names(), ","), o.Namespace)
	if o.LabelPod {
		cmd += " --label-pod"
	}
	if o.Events {
		cmd += " --events"
	}
	return cmd
}

func describe(verb string, r Rule, name, namespace string) string {
	group := r.APIGroup
	if group == "" {
		group = "core"
	}
	s := fmt.Sprintf("verb %q on resource %q (group %s) in namespace %q", verb, r.Resource, group, namespace)
	if name != "" {
		s += fmt.Sprintf(" named %q", name)
	}
	return s
}
