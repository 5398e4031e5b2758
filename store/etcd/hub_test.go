package etcd

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// What a Watch of a Keyspace tells, from what it told before and the shared
// watch's memory of its record: the boundaries of known.next.
func TestKnownNext(t *testing.T) {
	kv := func(create, mod int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{CreateRevision: create, ModRevision: mod}
	}
	for _, c := range []struct {
		name       string
		k          known
		e          entry
		hubRev     int64
		deleted    bool
		deletedRev int64
		kv         bool
		after      known
	}{
		{name: "the version told", k: known{true, 10}, e: entry{kv: kv(5, 10)}, hubRev: 12,
			after: known{true, 10}},
		{name: "older than told: the hub is behind", k: known{true, 10}, e: entry{kv: kv(5, 8)}, hubRev: 8,
			after: known{true, 10}},
		{name: "a newer version", k: known{true, 10}, e: entry{kv: kv(5, 11)}, hubRev: 11,
			kv: true, after: known{true, 11}},
		{name: "created again right after the version told", k: known{true, 10}, e: entry{kv: kv(11, 11)}, hubRev: 11,
			deleted: true, kv: true, after: known{true, 11}},
		{name: "created at the version told: the same record", k: known{true, 10}, e: entry{kv: kv(10, 12)}, hubRev: 12,
			kv: true, after: known{true, 12}},
		{name: "created again, the deletion seen", k: known{true, 10}, e: entry{kv: kv(13, 14), deleted: 12}, hubRev: 14,
			deleted: true, deletedRev: 12, kv: true, after: known{true, 14}},
		{name: "created again, only an older deletion seen", k: known{true, 10}, e: entry{kv: kv(13, 14), deleted: 9}, hubRev: 14,
			deleted: true, kv: true, after: known{true, 14}},
		{name: "created after a deletion told", k: known{false, 10}, e: entry{kv: kv(11, 11), deleted: 9}, hubRev: 11,
			kv: true, after: known{true, 11}},
		{name: "still absent", k: known{false, 10}, e: entry{}, hubRev: 20,
			after: known{false, 10}},
		{name: "absent, the hub behind the version told", k: known{true, 10}, e: entry{}, hubRev: 9,
			after: known{true, 10}},
		{name: "deleted, at a revision the watch reported", k: known{true, 10}, e: entry{deleted: 15}, hubRev: 17,
			deleted: true, deletedRev: 15, after: known{false, 17}},
		{name: "deleted, found by a new read", k: known{true, 10}, e: entry{}, hubRev: 10,
			deleted: true, after: known{false, 10}},
		{name: "deleted, only an older deletion seen", k: known{true, 10}, e: entry{deleted: 10}, hubRev: 30,
			deleted: true, after: known{false, 30}},
		{name: "absent from the beginning", k: known{false, 0}, e: entry{kv: kv(3, 7)}, hubRev: 9,
			kv: true, after: known{true, 7}},
	} {
		k := c.k
		deleted, deletedRev, got := k.next(c.e, c.hubRev)
		if deleted != c.deleted || deletedRev != c.deletedRev || (got != nil) != c.kv || k != c.after {
			t.Errorf("%s: from %+v, next(%+v, %d) = deleted %v at %d, record %v, then %+v; want deleted %v at %d, record %v, then %+v",
				c.name, c.k, c.e, c.hubRev, deleted, deletedRev, got != nil, k, c.deleted, c.deletedRev, c.kv, c.after)
		}
		if got != nil && got != c.e.kv {
			t.Errorf("%s: told a key-value other than the hub's", c.name)
		}
	}
}
