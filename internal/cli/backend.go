package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	// open returns the stores of the leases names, in their order, on one
	// connection to the backend (one API server client, one etcd client,
	// one folder).
	open func(ctx context.Context, c *common, names []string) ([]store.Store, error)
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

// openStore returns the store of the one lease, --lease.
func (c *common) openStore(ctx context.Context) (store.Store, error) {
	sts, err := c.be.open(ctx, c, []string{c.lease})
	if err != nil {
		return nil, err
	}
	return sts[0], nil
}

// openKube opens the Leases. One lease has a client of its own that
// watches that Lease (kube.New); several share one kube.Client: one
// connection, a rate limiter per Lease, and one watch of the namespace's
// Leases, or one per Lease where RBAC refuses that (the Client logs it
// once).
func openKube(ctx context.Context, c *common, names []string) ([]store.Store, error) {
	if len(names) == 1 {
		st, err := kube.New(c.rest, c.namespace, names[0], kube.Options{UserAgent: "incumbent", PodUID: c.podUID})
		if err != nil {
			return nil, usage(err)
		}
		return []store.Store{st}, nil
	}
	client, err := kube.NewClient(c.rest, kube.ClientOptions{UserAgent: "incumbent", PodUID: c.podUID, Logger: c.logger})
	if err != nil {
		return nil, usage(err)
	}
	sts := make([]store.Store, len(names))
	for i, name := range names {
		st, err := client.Store(c.namespace, name)
		if err != nil {
			return nil, usage(err)
		}
		sts[i] = st
	}
	return sts, nil
}

// openFile opens the leases in --file-dir (default: the per-user state
// folder), for processes of one machine.
func openFile(ctx context.Context, c *common, names []string) ([]store.Store, error) {
	dir := c.fileDir
	if dir == "" {
		d, err := file.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	for _, name := range names {
		if err := file.ValidateName(name); err != nil {
			return nil, usage(err)
		}
	}
	// One folder: its leases' watches share one notifier (an inotify
	// instance, of which a user has few).
	d, err := file.OpenDir(dir, file.Options{})
	switch {
	case errors.Is(err, store.ErrPermission):
		return nil, permissionDenied(err)
	case err != nil:
		return nil, usage(err)
	}
	sts := make([]store.Store, len(names))
	for i, name := range names {
		st, err := d.Store(name)
		if err != nil {
			return nil, usage(err)
		}
		sts[i] = st
	}
	return sts, nil
}

// openEtcd opens the leases as keys under --etcd-prefix on the etcd
// cluster at --etcd-endpoints, through one client.
func openEtcd(ctx context.Context, c *common, names []string) ([]store.Store, error) {
	if len(c.etcd.Endpoints) == 0 {
		return nil, usagef("--backend etcd needs --etcd-endpoints (or INCUMBENT_ETCD_ENDPOINTS)")
	}
	var (
		mu       sync.Mutex
		client   *clientv3.Client
		keyspace *etcd.Keyspace // with several leases: one watch of the prefix for all
	)
	// connect makes the one client, on first success.
	connect := func() (*clientv3.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if client != nil {
			return client, nil
		}
		cl, err := etcd.NewClient(c.etcd)
		if err != nil {
			return nil, err
		}
		if len(names) > 1 {
			ks, err := etcd.NewKeyspace(cl, c.etcdPrefix)
			if err != nil {
				cl.Close()
				return nil, err
			}
			keyspace = ks
		}
		client = cl
		return cl, nil
	}
	openOne := func(name string) func() (store.Store, error) {
		return func() (store.Store, error) {
			cl, err := connect()
			if err != nil {
				return nil, err
			}
			if keyspace != nil {
				return keyspace.Store(name)
			}
			return etcd.New(cl, c.etcdPrefix, name)
		}
	}
	_, err := connect()
	switch {
	case errors.Is(err, etcd.ErrUnreachable):
		// A client that logs in needs an answer to be made: open the
		// stores when etcd answers, as startup waits for it.
		sts := make([]store.Store, len(names))
		for i, name := range names {
			sts[i] = &lazyStore{name: "etcd key " + c.etcdPrefix + "/" + name, open: openOne(name)}
		}
		return sts, nil
	case errors.Is(err, store.ErrPermission):
		return nil, permissionDenied(err)
	case err != nil:
		return nil, usage(err)
	}
	sts := make([]store.Store, len(names))
	for i, name := range names {
		st, err := openOne(name)()
		if err != nil {
			client.Close()
			if errors.Is(err, store.ErrPermission) {
				return nil, permissionDenied(err)
			}
			return nil, usage(err)
		}
		sts[i] = st
	}
	return sts, nil
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
