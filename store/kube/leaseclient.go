package kube

import (
	"context"
	"net/http"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// LeaseClient is the part of client-go's typed Lease client that the store
// uses; client-go's LeaseInterface satisfies it.
type LeaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// leaseClient is a LeaseClient on a REST client whose scheme knows only
// coordination.k8s.io/v1. client-go's full clientset registers every API
// group at start-up; this keeps a sidecar's memory small.
type leaseClient struct {
	c      *rest.RESTClient
	ns     string
	params runtime.ParameterCodec
}

// leaseConfig returns a copy of cfg for REST clients of coordination.k8s.io/v1
// whose scheme knows only that group, and the codec of their parameters.
func leaseConfig(cfg *rest.Config) (*rest.Config, runtime.ParameterCodec, error) {
	sch := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(sch); err != nil {
		return nil, nil, err
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &coordinationv1.SchemeGroupVersion
	c.NegotiatedSerializer = serializer.NewCodecFactory(sch).WithoutConversion()
	// Protobuf, as the Kubernetes components speak it: cheaper to encode
	// and decode than JSON, for the API server as for the candidates.
	if c.ContentType == "" {
		c.ContentType = runtime.ContentTypeProtobuf
		c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	return c, runtime.NewParameterCodec(sch), nil
}

// newLeaseClientFor returns a leaseClient of namespace ns on the HTTP client
// hc, configured by cfg and params (made by leaseConfig).
func newLeaseClientFor(cfg *rest.Config, params runtime.ParameterCodec, hc *http.Client, ns string) (*leaseClient, error) {
	rc, err := rest.RESTClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, err
	}
	return &leaseClient{c: rc, ns: ns, params: params}, nil
}

func (r *leaseClient) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := r.c.Get().Namespace(r.ns).Resource("leases").Name(name).VersionedParams(&opts, r.params).Do(ctx).Into(out)
	return out, err
}

func (r *leaseClient) Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := r.c.Post().Namespace(r.ns).Resource("leases").VersionedParams(&opts, r.params).Body(l).Do(ctx).Into(out)
	return out, err
}

func (r *leaseClient) Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := r.c.Put().Namespace(r.ns).Resource("leases").Name(l.Name).VersionedParams(&opts, r.params).Body(l).Do(ctx).Into(out)
	return out, err
}

func (r *leaseClient) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.c.Get().Namespace(r.ns).Resource("leases").VersionedParams(&opts, r.params).Watch(ctx)
}

// List lists the namespace's Leases (used by the shared watch).
func (r *leaseClient) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	out := &coordinationv1.LeaseList{}
	err := r.c.Get().Namespace(r.ns).Resource("leases").VersionedParams(&opts, r.params).Do(ctx).Into(out)
	return out, err
}
