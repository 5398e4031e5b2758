// Package kubeclient is a minimal Kubernetes client for the few calls the
// incumbent binary makes beside the Lease store: pods (get, list, patch),
// events (create) and self subject access reviews (create); and, for the
// operator commands and shell completion, leases and namespaces (list).
//
// It exists for the sidecar's footprint: client-go's typed clients import
// k8s.io/client-go/kubernetes/scheme, which links and registers every API
// group at startup (about 10 MB of resident memory for a process that uses
// three resources). This package registers core/v1, authorization/v1 and
// coordination/v1 only. Its methods have the signatures of the typed clients, so either can
// stand behind the small interfaces the other packages declare.
package kubeclient

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Client talks to the core/v1, authorization.k8s.io/v1 and
// coordination.k8s.io/v1 APIs.
type Client struct {
	core   *rest.RESTClient
	authz  *rest.RESTClient
	coord  *rest.RESTClient
	params runtime.ParameterCodec
}

// New returns a Client for cfg (user agent "incumbent" unless cfg sets
// one); it makes no request.
func New(cfg *rest.Config) (*Client, error) {
	if cfg == nil {
		return nil, fmt.Errorf("kubeclient: a rest.Config is required")
	}
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("kubeclient: register core/v1: %w", err)
	}
	if err := authorizationv1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("kubeclient: register authorization/v1: %w", err)
	}
	if err := coordinationv1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("kubeclient: register coordination/v1: %w", err)
	}
	codecs := serializer.NewCodecFactory(sch)
	build := func(apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.APIPath = apiPath
		c.GroupVersion = &gv
		c.NegotiatedSerializer = codecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = "incumbent"
		}
		return rest.RESTClientFor(c)
	}
	core, err := build("/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("kubeclient: core/v1 client: %w", err)
	}
	authz, err := build("/apis", authorizationv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("kubeclient: authorization/v1 client: %w", err)
	}
	coord, err := build("/apis", coordinationv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("kubeclient: coordination/v1 client: %w", err)
	}
	return &Client{core: core, authz: authz, coord: coord, params: runtime.NewParameterCodec(sch)}, nil
}

// Pods returns the pods of a namespace.
func (c *Client) Pods(namespace string) *Pods { return &Pods{c: c, ns: namespace} }

// Events returns the events of a namespace.
func (c *Client) Events(namespace string) *Events { return &Events{c: c, ns: namespace} }

// Leases returns the leases of a namespace; "" means every namespace.
func (c *Client) Leases(namespace string) *Leases { return &Leases{c: c, ns: namespace} }

// Namespaces returns the cluster's namespaces.
func (c *Client) Namespaces() *Namespaces { return &Namespaces{c: c} }

// SelfSubjectAccessReviews returns the access reviews of the caller.
func (c *Client) SelfSubjectAccessReviews() *Reviews { return &Reviews{c: c} }

// Pods is the pods of one namespace.
type Pods struct {
	c  *Client
	ns string
}

// Get reads one pod.
func (p *Pods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := p.c.core.Get().Namespace(p.ns).Resource("pods").Name(name).
		VersionedParams(&opts, p.c.params).Do(ctx).Into(out)
	return out, err
}

// List lists pods.
func (p *Pods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	out := &corev1.PodList{}
	err := p.c.core.Get().Namespace(p.ns).Resource("pods").
		VersionedParams(&opts, p.c.params).Do(ctx).Into(out)
	return out, err
}

// Patch patches one pod.
func (p *Pods) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := p.c.core.Patch(pt).Namespace(p.ns).Resource("pods").Name(name).SubResource(subresources...).
		VersionedParams(&opts, p.c.params).Body(data).Do(ctx).Into(out)
	return out, err
}

// Events is the events of one namespace.
type Events struct {
	c  *Client
	ns string
}

// Create creates an event.
func (e *Events) Create(ctx context.Context, ev *corev1.Event, opts metav1.CreateOptions) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := e.c.core.Post().Namespace(e.ns).Resource("events").
		VersionedParams(&opts, e.c.params).Body(ev).Do(ctx).Into(out)
	return out, err
}

// Leases is the leases of one namespace, or of all.
type Leases struct {
	c  *Client
	ns string
}

// List lists leases.
func (l *Leases) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	out := &coordinationv1.LeaseList{}
	err := l.c.coord.Get().Namespace(l.ns).Resource("leases").
		VersionedParams(&opts, l.c.params).Do(ctx).Into(out)
	return out, err
}

// Namespaces is the cluster's namespaces.
type Namespaces struct{ c *Client }

// List lists namespaces.
func (n *Namespaces) List(ctx context.Context, opts metav1.ListOptions) (*corev1.NamespaceList, error) {
	out := &corev1.NamespaceList{}
	err := n.c.core.Get().Resource("namespaces").
		VersionedParams(&opts, n.c.params).Do(ctx).Into(out)
	return out, err
}

// Reviews is the caller's access reviews.
type Reviews struct{ c *Client }

// Create asks whether the caller may do something.
func (r *Reviews) Create(ctx context.Context, review *authorizationv1.SelfSubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SelfSubjectAccessReview, error) {
	out := &authorizationv1.SelfSubjectAccessReview{}
	err := r.c.authz.Post().Resource("selfsubjectaccessreviews").
		VersionedParams(&opts, r.c.params).Body(review).Do(ctx).Into(out)
	return out, err
}
