package etcd

import (
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keyspace is the key prefix of any number of elections on one client, for
// a process that campaigns in many of them (one election per shard, per
// tenant, per bucket). Its Stores keep their records exactly as the Stores
// New returns do, with the same compare-and-set, revisions and fence key;
// only their Watches differ: they share one etcd watch of the whole prefix,
// fanned out to them by election name, instead of one watch each (one
// watcher on the server for any number of elections). The shared watch
// runs while a Watch of one of its Stores does, and the Keyspace holds
// nothing that must be closed.
//
// The shared watch keeps the newest value of every record under the
// prefix in memory, so that a Watch started from a version is told at once,
// with no request, what changed since. A Watch reports states, as the
// store.Store contract allows: changes its reader has not taken yet are
// merged into the newest state (a slow reader never holds up the shared
// watch nor any other Watch), but a deletion is never merged away. When
// etcd can no longer replay what the shared watch missed (compacted), it
// reads the prefix again and tells each Watch the current state of its
// record, deletions included, where a Store's own watch would end with
// rpctypes.ErrCompacted. With etcd authentication, the client's user needs
// read permission on the whole prefix (see the package documentation).
//
// The shared watch carries the changes of every record under the prefix,
// whether this process campaigns in that election or not: processes that
// campaign in different sets of many elections do better with a prefix
// each. Make one Keyspace per prefix and client, and all the Stores of its
// elections with it. A Keyspace is safe for concurrent use.
type Keyspace struct {
	client *clientv3.Client
	prefix string
	hub    *hub
}

// NewKeyspace returns the Keyspace of the elections whose records live in
// the keys <prefix>/<name>, reached through client, which the caller keeps
// and closes. An empty prefix means DefaultPrefix; the prefix must start
// with "/" and not end with one, as for New. It makes no request.
func NewKeyspace(client *clientv3.Client, prefix string) (*Keyspace, error) {
	if client == nil {
		return nil, errors.New("etcd store: a client is required")
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	return &Keyspace{client: client, prefix: prefix, hub: newHub(client, prefix+"/")}, nil
}

// Store returns the Store of the election name, kept in the key
// <prefix>/<name>, as New(client, prefix, name, opts...) would, except that
// its Watches share the Keyspace's watch. The name may hold letters,
// digits, '.', '-' and '_'. Stores of one name, from this Keyspace or from
// New, share one record. It makes no request.
func (k *Keyspace) Store(name string, opts ...Option) (*Store, error) {
	s, err := newStore(k.client, k.prefix, name, opts)
	if err != nil {
		return nil, err
	}
	s.shared = k.hub
	return s, nil
}

// Prefix is the key prefix of the Keyspace's records, without the "/" that
// separates it from an election's name.
func (k *Keyspace) Prefix() string { return k.prefix }
