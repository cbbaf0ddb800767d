package kms

import (
	"context"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// Custom key stores are not built: Keyfort has none, and CreateKey with a
// CustomKeyStoreId answers CustomKeyStoreNotFoundException. The operations
// that read or change a custom key store answer what AWS answers in an
// account without one, once the caller may call them (IAM policy actions,
// as on AWS): DescribeCustomKeyStores an empty list, and
// CustomKeyStoreNotFoundException for any store named. CreateCustomKeyStore
// stays NotImplementedException: it would need a CloudHSM cluster or an
// external key store proxy.

// DescribeCustomKeyStores implements kmsapi.Service.
func (s *Service) DescribeCustomKeyStores(ctx context.Context, in *kmsapi.DescribeCustomKeyStoresInput) (*kmsapi.DescribeCustomKeyStoresOutput, error) {
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	if in.Marker != nil {
		// No page was ever given out, so no marker is Keyfort's.
		if _, err := s.marker.decode("customkeystores", *in.Marker); err != nil {
			return nil, err
		}
	}
	switch {
	case in.CustomKeyStoreId != nil:
		return nil, errNoKeyStore(*in.CustomKeyStoreId)
	case in.CustomKeyStoreName != nil:
		return nil, errNoKeyStore(*in.CustomKeyStoreName)
	}
	return &kmsapi.DescribeCustomKeyStoresOutput{CustomKeyStores: []kmsapi.CustomKeyStoresListEntry{}, Truncated: ptr(false)}, nil
}

// ConnectCustomKeyStore implements kmsapi.Service.
func (s *Service) ConnectCustomKeyStore(ctx context.Context, in *kmsapi.ConnectCustomKeyStoreInput) (*kmsapi.ConnectCustomKeyStoreOutput, error) {
	return nil, s.noKeyStore(ctx, in.IAMAction(), deref(in.CustomKeyStoreId))
}

// DisconnectCustomKeyStore implements kmsapi.Service.
func (s *Service) DisconnectCustomKeyStore(ctx context.Context, in *kmsapi.DisconnectCustomKeyStoreInput) (*kmsapi.DisconnectCustomKeyStoreOutput, error) {
	return nil, s.noKeyStore(ctx, in.IAMAction(), deref(in.CustomKeyStoreId))
}

// UpdateCustomKeyStore implements kmsapi.Service.
func (s *Service) UpdateCustomKeyStore(ctx context.Context, in *kmsapi.UpdateCustomKeyStoreInput) (*kmsapi.UpdateCustomKeyStoreOutput, error) {
	return nil, s.noKeyStore(ctx, in.IAMAction(), deref(in.CustomKeyStoreId))
}

// DeleteCustomKeyStore implements kmsapi.Service.
func (s *Service) DeleteCustomKeyStore(ctx context.Context, in *kmsapi.DeleteCustomKeyStoreInput) (*kmsapi.DeleteCustomKeyStoreOutput, error) {
	return nil, s.noKeyStore(ctx, in.IAMAction(), deref(in.CustomKeyStoreId))
}

// noKeyStore checks that the caller may call action (AccessDeniedException)
// and answers that the custom key store id does not exist.
func (s *Service) noKeyStore(ctx context.Context, action, id string) error {
	if err := s.authorizeAccount(ctx, act(action)); err != nil {
		return err
	}
	return errNoKeyStore(id)
}

// errNoKeyStore is CustomKeyStoreNotFoundException for a custom key store
// id (or name), in the words CreateKey uses for it.
func errNoKeyStore(id string) error {
	return awserr.Newf(codeCustomKeyStoreNF, "Custom key store '%s' does not exist.", id)
}
