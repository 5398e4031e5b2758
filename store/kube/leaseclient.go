package kube

import (
	"context"

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

func newLeaseClient(cfg *rest.Config, ns string) (*leaseClient, error) {
	sch := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(sch); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &coordinationv1.SchemeGroupVersion
	c.NegotiatedSerializer = serializer.NewCodecFactory(sch).WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &leaseClient{c: rc, ns: ns, params: runtime.NewParameterCodec(sch)}, nil
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
