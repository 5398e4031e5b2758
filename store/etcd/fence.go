package etcd

import (
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/store"
)

// Option changes a Store that New or Keyspace.Store returns.
type Option func(*Store)

// WithFenceKey makes the Store keep the fence key <prefix>/<name>/term
// beside the record, so that IsHolder can fence the leader's own
// transactions. The key is written in the same transaction as the record
// whenever a write names a holder whose term the key does not hold yet (an
// acquisition), so its mod revision is then that term's fencing token, and
// it is deleted with a release. Renewals leave it alone. With etcd
// authentication, the client's user then needs read and write permission on
// both keys (etcdctl role grant-permission ROLE readwrite KEY, for each).
//
// Every candidate of the election must use the option: a candidate without
// it does not move the key when it acquires, and a stale holder's
// comparison would still hold.
func WithFenceKey() Option {
	return func(s *Store) { s.fenceKey = s.key + "/term" }
}

// FenceKey is the key WithFenceKey keeps, or "" without the option.
func (s *Store) FenceKey() string { return s.fenceKey }

// IsHolder returns the comparison that holds exactly while the term with
// the given fencing token (election.Term.Token) holds the lease: the fence
// key's mod revision is the token. Put it in the If of the leader's own
// transactions, as etcd's concurrency.Mutex.IsOwner is used, and etcd itself
// refuses the writes of a deposed or released leader: once anybody else has
// acquired the lease, or the lease was released, the comparison fails.
//
//	resp, err := client.Txn(ctx).If(st.IsHolder(term.Token())).Then(clientv3.OpPut(k, v)).Commit()
//	// !resp.Succeeded: this term no longer holds the lease.
//
// Without WithFenceKey it never holds (it compares a key that never
// exists), so that a misconfigured leader fails closed.
func (s *Store) IsHolder(token int64) clientv3.Cmp {
	key := s.fenceKey
	if key == "" {
		key = s.key + "/term" // never written without the option
		token = -1            // and no key has a negative mod revision
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", token)
}

// withFence adds to the record's put what keeps the fence key: for a held
// record, a put of the holder's term marker unless the key holds it already
// (a nested transaction, so that a renewal does not move the key's mod
// revision); for a free one, its deletion.
func (s *Store) withFence(rec store.Record, put clientv3.Op) []clientv3.Op {
	if s.fenceKey == "" {
		return []clientv3.Op{put}
	}
	if !rec.Held() {
		return []clientv3.Op{put, clientv3.OpDelete(s.fenceKey)}
	}
	// Transitions rise with every acquisition, the holder's own ones too.
	marker := strconv.Quote(rec.Holder) + " " + strconv.Quote(rec.Instance) + " " + strconv.FormatInt(rec.Transitions, 10)
	return []clientv3.Op{put, clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value(s.fenceKey), "=", marker)},
		nil,
		[]clientv3.Op{clientv3.OpPut(s.fenceKey, marker)},
	)}
}
