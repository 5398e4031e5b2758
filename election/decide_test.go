package election

import (
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// The campaign's rule, at the boundaries of every wait, without a server.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const lease = 15 * time.Second
	me := standing{identity: "me", instance: "i1", ownLease: 10 * time.Second}
	held := func(holder, instance string) store.Record {
		return store.Record{Holder: holder, Instance: instance, LeaseDuration: lease, Version: "7", Revision: 7}
	}
	seen := func(rec store.Record) observation {
		return observation{known: true, exists: true, seen: true, rec: rec, at: t0}
	}
	deleted := func(gone store.Record) observation {
		return observation{known: true, seen: true, gone: gone, at: t0}
	}
	free := store.Record{LeaseDuration: time.Second, Version: "8", Revision: 8}
	reserved := func(to string) store.Record {
		r := free
		r.HandoffTo, r.LeaseDuration = to, lease
		return r
	}
	malformed := store.Record{Holder: "x", LeaseDuration: 0, Version: "9", Revision: 9}
	with := func(f func(*standing)) standing { s := me; f(&s); return s }

	cases := []struct {
		name  string
		o     observation
		now   time.Time
		c     standing
		take  bool
		until time.Time
		state State
		extra func(t *testing.T, d decision)
	}{
		{name: "held: one nanosecond before expiry", o: seen(held("b", "j")), now: t0.Add(lease - 1), c: me,
			until: t0.Add(lease), state: StateFollowing},
		{name: "held: at expiry", o: seen(held("b", "j")), now: t0.Add(lease), c: me, take: true, state: StateCampaigning},
		{name: "held: the record's own stamps are never read", o: func() observation {
			r := held("b", "j")
			r.RenewTime = t0.Add(-time.Hour) // long ago by the holder's clock
			return seen(r)
		}(), now: t0.Add(time.Second), c: me, until: t0.Add(lease), state: StateFollowing},
		{name: "held by this very process (lost answer): taken back at once", o: seen(held("me", "i1")), now: t0, c: me,
			take: true, state: StateCampaigning},
		{name: "same identity, other process: waited out like anyone", o: seen(held("me", "i2")), now: t0.Add(lease - 1), c: me,
			until: t0.Add(lease), state: StateFollowing,
			extra: func(t *testing.T, d decision) {
				if !d.duplicate {
					t.Error("duplicate identity not flagged")
				}
			}},
		{name: "malformed: waited out for this candidate's own lease", o: seen(malformed), now: t0.Add(10*time.Second - 1), c: me,
			until: t0.Add(10 * time.Second), state: StateFollowing,
			extra: func(t *testing.T, d decision) {
				if d.malformed == nil {
					t.Error("malformed record not flagged")
				}
			}},
		{name: "malformed: taken after this candidate's own lease", o: seen(malformed), now: t0.Add(10 * time.Second), c: me,
			take: true, state: StateCampaigning},
		{name: "never seen: created at once", o: observation{known: true}, now: t0, c: me, take: true, state: StateCampaigning},
		{name: "deleted while held: waited out from the deletion", o: deleted(held("b", "j")), now: t0.Add(lease - 1), c: me,
			until: t0.Add(lease), state: StateFollowing},
		{name: "deleted while held: re-created after its lease", o: deleted(held("b", "j")), now: t0.Add(lease), c: me,
			take: true, state: StateCampaigning},
		{name: "deleted after a release: created at once", o: deleted(store.Record{}), now: t0, c: me, take: true, state: StateCampaigning},
		{name: "free: taken at once", o: seen(free), now: t0, c: me, take: true, state: StateCampaigning},
		{name: "reserved for another: held back until its lease ends", o: seen(reserved("b")), now: t0.Add(lease - 1), c: me,
			until: t0.Add(lease), state: StateHeldBack},
		{name: "reserved for another: free after its lease", o: seen(reserved("b")), now: t0.Add(lease), c: me,
			take: true, state: StateCampaigning},
		{name: "reserved for me: taken at once", o: seen(reserved("me")), now: t0, c: me, take: true, state: StateCampaigning},
		{name: "resigned: held back one nanosecond before its hold ends", o: seen(free), now: t0.Add(lease - 1),
			c: with(func(s *standing) { s.holdUntil = t0.Add(lease) }), until: t0.Add(lease), state: StateHeldBack},
		{name: "resigned: campaigns when its hold ends", o: seen(free), now: t0.Add(lease),
			c: with(func(s *standing) { s.holdUntil = t0.Add(lease) }), take: true, state: StateCampaigning},
		{name: "resigned, but handed the lease: taken at once", o: seen(reserved("me")), now: t0,
			c: with(func(s *standing) { s.holdUntil = t0.Add(lease) }), take: true, state: StateCampaigning},
		{name: "resigned, while another holds it: follows (the lease's wait is longer)", o: seen(held("b", "j")), now: t0,
			c: with(func(s *standing) { s.holdUntil = t0.Add(time.Second) }), until: t0.Add(lease), state: StateFollowing},
		{name: "after a failed acquisition: waits for the retry", o: seen(free), now: t0,
			c: with(func(s *standing) { s.retryAt = t0.Add(2 * time.Second) }), until: t0.Add(2 * time.Second), state: StateCampaigning},
		{name: "withdrawn: never takes, even a free lease", o: seen(free), now: t0,
			c: with(func(s *standing) { s.withdrawn = true }), state: StateHeldBack},
		{name: "withdrawn: never takes, even one handed to it", o: seen(reserved("me")), now: t0,
			c: with(func(s *standing) { s.withdrawn = true }), state: StateHeldBack},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.o, tc.now, tc.c)
			if d.take != tc.take || !d.until.Equal(tc.until) || d.state != tc.state {
				t.Errorf("decide = take %v until %v state %q (%s); want take %v until %v state %q",
					d.take, d.until.Sub(t0), d.state, d.reason, tc.take, tc.until.Sub(t0), tc.state)
			}
			if d.reason == "" {
				t.Error("no reason given")
			}
			if tc.extra != nil {
				tc.extra(t, d)
			}
		})
	}
}
