package etcd

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/incumbent-io/incumbent/store"
)

// wrap adds the operation and the key to err, and classifies an
// authentication or authorization refusal as store.ErrPermission.
func (s *Store) wrap(op string, err error) error {
	if isPermission(err) {
		return fmt.Errorf("%s %s: %w: etcd refused %s on key %q; the client's user needs readwrite permission on it: %w",
			op, s, store.ErrPermission, op, s.key, err)
	}
	return fmt.Errorf("%s %s: %w", op, s, err)
}

// wrapShared adds the operation and the key to an error of a Keyspace's
// shared watch, naming the prefix it watches, and classifies a refusal as
// store.ErrPermission.
func (s *Store) wrapShared(err error) error {
	prefix := s.shared.prefix
	if isPermission(err) {
		return fmt.Errorf("watch %s: %w: etcd refused the shared watch of the prefix %q, which reads and watches every key under it; the client's user needs read permission on the prefix (etcdctl role grant-permission <role> --prefix read %s): %w",
			s, store.ErrPermission, prefix, prefix, err)
	}
	return fmt.Errorf("watch %s: the shared watch of the prefix %q: %w", s, prefix, err)
}

// isPermission reports whether etcd refused a request for lack of rights,
// or because the client's credentials are wrong or missing: retrying cannot
// cure it. An expired auth token is not one of these: the client refreshes
// it by itself.
func isPermission(err error) bool {
	if errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrUserEmpty) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.PermissionDenied
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.PermissionDenied {
		return true
	}
	// A refused watch reaches the client as the text of a gRPC status,
	// which the client does not turn back into a typed error.
	msg := err.Error()
	return strings.Contains(msg, rpctypes.ErrPermissionDenied.Error()) || strings.Contains(msg, rpctypes.ErrUserEmpty.Error())
}
