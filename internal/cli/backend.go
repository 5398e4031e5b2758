package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
	"github.com/incumbent-io/incumbent/store/file"
	"github.com/incumbent-io/incumbent/store/kube"
)

// backend is one kind of store --backend selects. Adding a store is one
// entry in backends (plus, if it needs them, its own flags in
// common.addFlags).
type backend struct {
	name string
	// kubernetes backends support --label-pod, --events, the rbac command
	// and the pod column of status; they need a namespace and credentials.
	kubernetes bool
	// what names the store's server for "waiting for ..." messages.
	what string
	open func(ctx context.Context, c *common) (store.Store, error)
}

func backends() []backend {
	return []backend{
		{name: "kubernetes", kubernetes: true, what: "the API server", open: openKube},
		{name: "file", what: "the lease file", open: openFile},
		{name: "etcd", what: "etcd", open: openEtcd},
	}
}

func backendNames() []string {
	var names []string
	for _, b := range backends() {
		names = append(names, b.name)
	}
	return names
}

func findBackend(name string) (backend, error) {
	for _, b := range backends() {
		if b.name == name {
			return b, nil
		}
	}
	return backend{}, fmt.Errorf("unknown --backend %q: want one of %s", name, strings.Join(backendNames(), ", "))
}

func openKube(ctx context.Context, c *common) (store.Store, error) {
	st, err := kube.New(c.rest, c.namespace, c.lease, kube.Options{UserAgent: "incumbent", PodUID: c.podUID})
	if err != nil {
		return nil, usage(err)
	}
	return st, nil
}

// openFile opens the lease in --file-dir (default: the per-user state
// folder), for processes of one machine.
func openFile(ctx context.Context, c *common) (store.Store, error) {
	dir := c.fileDir
	if dir == "" {
		d, err := file.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := file.ValidateName(c.lease); err != nil {
		return nil, usage(err)
	}
	st, err := file.New(dir, c.lease)
	switch {
	case errors.Is(err, store.ErrPermission):
		return nil, permissionDenied(err)
	case err != nil:
		return nil, usage(err)
	}
	return st, nil
}

// openEtcd opens the lease as a key under --etcd-prefix on the etcd cluster
// at --etcd-endpoints.
func openEtcd(ctx context.Context, c *common) (store.Store, error) {
	if len(c.etcd.Endpoints) == 0 {
		return nil, usagef("--backend etcd needs --etcd-endpoints (or INCUMBENT_ETCD_ENDPOINTS)")
	}
	open := func() (store.Store, error) {
		client, err := etcd.NewClient(c.etcd)
		if err != nil {
			return nil, err
		}
		st, err := etcd.New(client, c.etcdPrefix, c.lease)
		if err != nil {
			client.Close()
			return nil, err
		}
		return st, nil
	}
	st, err := open()
	switch {
	case errors.Is(err, etcd.ErrUnreachable):
		// A client that logs in needs an answer to be made: open it when
		// etcd answers, as startup waits for it.
		return &lazyStore{name: "etcd key " + c.etcdPrefix + "/" + c.lease, open: open}, nil
	case errors.Is(err, store.ErrPermission):
		return nil, permissionDenied(err)
	case err != nil:
		return nil, usage(err)
	}
	return st, nil
}

// lazyStore opens its store on first use, and again at each use until that
// works; until then every call fails with the reason. It is for stores whose
// client needs its server to answer to be made.
type lazyStore struct {
	name string
	open func() (store.Store, error)

	mu sync.Mutex
	st store.Store
}

func (l *lazyStore) store() (store.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st, nil
	}
	st, err := l.open()
	if err != nil {
		return nil, err
	}
	l.st = st
	return st, nil
}

func (l *lazyStore) Get(ctx context.Context) (store.Record, error) {
	st, err := l.store()
	if err != nil {
		return store.Record{}, err
	}
	return st.Get(ctx)
}

func (l *lazyStore) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	st, err := l.store()
	if err != nil {
		return store.Record{}, err
	}
	return st.Create(ctx, rec)
}

func (l *lazyStore) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	st, err := l.store()
	if err != nil {
		return store.Record{}, err
	}
	return st.Update(ctx, rec)
}

func (l *lazyStore) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	st, err := l.store()
	if err != nil {
		return nil, err
	}
	return st.Watch(ctx, after)
}

func (l *lazyStore) String() string { return l.name }
