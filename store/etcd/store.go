package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/store"
)

// DefaultPrefix is the key prefix New uses when given an empty one.
const DefaultPrefix = "/incumbent/leases"

// Store is the etcd-backed store.Store of one election: the single key
// <prefix>/<name>. It is safe for concurrent use.
type Store struct {
	client   *clientv3.Client
	name     string
	key      string
	fenceKey string // "" unless WithFenceKey
	shared   *hub   // the Keyspace's shared watch; nil: Watch watches the key alone

	mu   sync.Mutex
	last revisionFields // the newest value read or written
}

// revisionFields remembers the unknown fields of the value at one revision,
// to carry them over when that revision is updated.
type revisionFields struct {
	rev   int64
	extra extra
}

// New returns the Store of the election name, kept in the key
// <prefix>/<name> through client, which the caller keeps and closes. An
// empty prefix means DefaultPrefix. The prefix must start with "/" and not
// end with one; the name may hold letters, digits, '.', '-' and '_'. Each
// Watch of the Store is an etcd watch of its key alone; the Stores of a
// Keyspace share one watch of the prefix instead.
func New(client *clientv3.Client, prefix, name string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("etcd store: a client is required")
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	return newStore(client, prefix, name, opts)
}

// newStore returns the Store of name under a valid prefix.
func newStore(client *clientv3.Client, prefix, name string, opts []Option) (*Store, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	s := &Store{client: client, name: name, key: prefix + "/" + name}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func validatePrefix(prefix string) error {
	switch {
	case !strings.HasPrefix(prefix, "/"):
		return fmt.Errorf("etcd store: key prefix %q must start with \"/\", e.g. %q", prefix, DefaultPrefix)
	case len(prefix) > 1 && strings.HasSuffix(prefix, "/"), prefix == "/":
		return fmt.Errorf("etcd store: key prefix %q must not end with \"/\" (the key is <prefix>/<name>)", prefix)
	case strings.IndexFunc(prefix, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("etcd store: key prefix %q must not contain spaces or control characters", prefix)
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("etcd store: the election name must not be empty")
	case len(name) > 253:
		return fmt.Errorf("etcd store: the election name must be at most 253 characters, got %d", len(name))
	case name == "." || name == "..":
		return fmt.Errorf("etcd store: the election name must not be %q", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("etcd store: invalid election name %q: only letters, digits, '.', '-' and '_' are allowed, not %q", name, r)
		}
	}
	return nil
}

// Key is the etcd key that holds the record.
func (s *Store) Key() string { return s.key }

// String names the record for logs and errors, e.g. "etcd key
// /incumbent/leases/db".
func (s *Store) String() string { return "etcd key " + s.key }

// Get implements store.Store with a linearizable read of the key.
func (s *Store) Get(ctx context.Context) (store.Record, error) { return s.get(ctx, "get") }

// get reads the record on behalf of the operation op, named in errors.
func (s *Store) get(ctx context.Context, op string) (store.Record, error) {
	resp, err := s.client.Get(ctx, s.key)
	if err != nil {
		return store.Record{}, s.wrap(op, err)
	}
	if len(resp.Kvs) == 0 {
		return store.Record{}, fmt.Errorf("%s %s: %w", op, s, store.ErrNotFound)
	}
	kv := resp.Kvs[0]
	rec, err := s.decodeAt(kv.Value, kv.ModRevision)
	if err != nil {
		return store.Record{}, fmt.Errorf("%s %s: %w", op, s, err)
	}
	return rec, nil
}

// Create implements store.Store: it puts the value only if the key has never
// been created or was deleted since (CreateRevision == 0).
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	val, err := encode(rec, nil)
	if err != nil {
		return store.Record{}, fmt.Errorf("create %s: %w", s, err)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.key), "=", 0)).
		Then(s.withFence(rec, clientv3.OpPut(s.key, val))...).
		Else(clientv3.OpGet(s.key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return store.Record{}, s.wrap("create", err)
	}
	if !resp.Succeeded {
		return store.Record{}, fmt.Errorf("create %s: %w: the key exists (mod revision %d)", s, store.ErrConflict, modRevision(resp))
	}
	return s.written("create", val, resp.Header.Revision)
}

// Update implements store.Store: it puts the value only if the key's mod
// revision still equals rec.Version. Fields of the value this version does
// not know are carried over. A malformed value is never overwritten.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	rev, err := strconv.ParseInt(rec.Version, 10, 64)
	if err != nil || rev <= 0 {
		// No key ever has such a revision: read the record again.
		return store.Record{}, fmt.Errorf("update %s: %w: version %q is not an etcd mod revision", s, store.ErrConflict, rec.Version)
	}
	ext, ok := s.recall(rev)
	if !ok {
		// Not seen by this Store: read it, both for the fields to carry
		// over and to refuse overwriting a malformed value.
		cur, err := s.get(ctx, "update")
		if err != nil {
			return store.Record{}, err
		}
		if cur.Version != rec.Version {
			return store.Record{}, fmt.Errorf("update %s: %w: mod revision is %s, not %s", s, store.ErrConflict, cur.Version, rec.Version)
		}
		if ext, ok = s.recall(rev); !ok {
			// A concurrent read remembered a newer revision: the
			// compare below decides.
			ext = nil
		}
	}
	val, err := encode(rec, ext)
	if err != nil {
		return store.Record{}, fmt.Errorf("update %s: %w", s, err)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.key), "=", rev)).
		Then(s.withFence(rec, clientv3.OpPut(s.key, val))...).
		Else(clientv3.OpGet(s.key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return store.Record{}, s.wrap("update", err)
	}
	if !resp.Succeeded {
		cur := modRevision(resp)
		if cur == 0 {
			return store.Record{}, fmt.Errorf("update %s: %w", s, store.ErrNotFound)
		}
		return store.Record{}, fmt.Errorf("update %s: %w: mod revision is %d, not %d", s, store.ErrConflict, cur, rev)
	}
	return s.written("update", val, resp.Header.Revision)
}

// written returns the record just stored at rev, exactly as a Get would.
func (s *Store) written(op, val string, rev int64) (store.Record, error) {
	rec, err := s.decodeAt([]byte(val), rev)
	if err != nil {
		// encode and decode disagree: a bug, not a condition of the store.
		return store.Record{}, fmt.Errorf("%s %s: re-reading the value written: %w", op, s, err)
	}
	return rec, nil
}

// decodeAt decodes the value of the key at mod revision rev, remembers its
// unknown fields, and sets the record's Version.
func (s *Store) decodeAt(raw []byte, rev int64) (store.Record, error) {
	rec, ext, err := decode(raw)
	if err != nil {
		return store.Record{}, fmt.Errorf("%w (mod revision %d; fix or delete the key %s)", err, rev, s.key)
	}
	rec.Version = strconv.FormatInt(rev, 10)
	rec.Revision = rev // etcd's revisions order every write of the cluster
	s.remember(rev, ext)
	return rec, nil
}

// remember keeps the unknown fields of the newest revision seen.
func (s *Store) remember(rev int64, ext extra) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev >= s.last.rev {
		s.last = revisionFields{rev: rev, extra: ext}
	}
}

// recall returns the unknown fields of the value at rev, if remembered.
func (s *Store) recall(rev int64) (extra, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.rev != rev {
		return nil, false
	}
	return s.last.extra, true
}

// modRevision returns the mod revision that the Else branch of a
// transaction read, or 0 when the key is absent.
func modRevision(resp *clientv3.TxnResponse) int64 {
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			return rr.Kvs[0].ModRevision
		}
	}
	return 0
}

var _ store.Store = (*Store)(nil)
