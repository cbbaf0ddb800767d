// Command sealcheck drives the awskms wrapper that HashiCorp Vault's and
// OpenBao's `seal "awskms"` auto-unseal runs (go-kms-wrapping
// wrappers/awskms/v2) against a KMS endpoint, for e2e/interop/seal.sh.
//
// It is its own module (keyfort.test/sealcheck) so that nothing of it enters
// Keyfort's go.mod, go.sum or `go test ./...`.
//
//	sealcheck -impl vault|openbao -endpoint URL -region R -key KEY setconfig
//	sealcheck ... encrypt PLAINFILE BLOBFILE
//	sealcheck ... decrypt BLOBFILE PLAINFILE
//
// Each run configures the wrapper as Vault does at start (SetConfig with the
// seal stanza as a config map, which calls DescribeKey), then encrypts or
// decrypts once, as Vault does when it stores or reads its root key. BLOBFILE
// holds the protobuf-marshalled wrapping.BlobInfo, the form in which Vault
// stores the sealed root key (core/hsm/barrier-unseal-keys). It prints
// key=value lines on stdout; on a wrapper error it prints "error=<text>" and
// exits 2 (1 for any other failure).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	hcwrapping "github.com/hashicorp/go-kms-wrapping/v2"
	hcawskms "github.com/hashicorp/go-kms-wrapping/wrappers/awskms/v2"
	obwrapping "github.com/openbao/go-kms-wrapping/v2"
	obawskms "github.com/openbao/go-kms-wrapping/wrappers/awskms/v2"
	"google.golang.org/protobuf/proto"
)

// seal is what sealcheck needs of a wrapper, with one implementation per fork
// (their option and blob types are distinct Go types).
type seal interface {
	setConfig(ctx context.Context, cfg map[string]string) (map[string]string, error)
	keyID(ctx context.Context) string
	encrypt(ctx context.Context, plaintext []byte) (blob []byte, keyID string, mechanism uint64, err error)
	decrypt(ctx context.Context, blob []byte) ([]byte, error)
}

type vaultSeal struct{ w *hcawskms.Wrapper }

func (s vaultSeal) setConfig(ctx context.Context, cfg map[string]string) (map[string]string, error) {
	wc, err := s.w.SetConfig(ctx, hcwrapping.WithConfigMap(cfg))
	if err != nil {
		return nil, err
	}
	return wc.Metadata, nil
}

func (s vaultSeal) keyID(ctx context.Context) string { id, _ := s.w.KeyId(ctx); return id }

func (s vaultSeal) encrypt(ctx context.Context, pt []byte) ([]byte, string, uint64, error) {
	bi, err := s.w.Encrypt(ctx, pt)
	if err != nil {
		return nil, "", 0, err
	}
	b, err := proto.Marshal(bi)
	return b, bi.KeyInfo.GetKeyId(), bi.KeyInfo.GetMechanism(), err
}

func (s vaultSeal) decrypt(ctx context.Context, blob []byte) ([]byte, error) {
	bi := new(hcwrapping.BlobInfo)
	if err := proto.Unmarshal(blob, bi); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return s.w.Decrypt(ctx, bi)
}

type openbaoSeal struct{ w *obawskms.Wrapper }

func (s openbaoSeal) setConfig(ctx context.Context, cfg map[string]string) (map[string]string, error) {
	wc, err := s.w.SetConfig(ctx, obwrapping.WithConfigMap(cfg))
	if err != nil {
		return nil, err
	}
	return wc.Metadata, nil
}

func (s openbaoSeal) keyID(ctx context.Context) string { id, _ := s.w.KeyId(ctx); return id }

func (s openbaoSeal) encrypt(ctx context.Context, pt []byte) ([]byte, string, uint64, error) {
	bi, err := s.w.Encrypt(ctx, pt)
	if err != nil {
		return nil, "", 0, err
	}
	b, err := proto.Marshal(bi)
	return b, bi.KeyInfo.GetKeyId(), bi.KeyInfo.GetMechanism(), err
}

func (s openbaoSeal) decrypt(ctx context.Context, blob []byte) ([]byte, error) {
	bi := new(obwrapping.BlobInfo)
	if err := proto.Unmarshal(blob, bi); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return s.w.Decrypt(ctx, bi)
}

// errWrapper marks an error returned by the wrapper itself (exit status 2).
type errWrapper struct{ err error }

func (e errWrapper) Error() string { return e.err.Error() }

func main() {
	impl := flag.String("impl", "vault", "wrapper: vault (hashicorp/go-kms-wrapping) or openbao (openbao/go-kms-wrapping)")
	endpoint := flag.String("endpoint", "", "seal stanza endpoint")
	region := flag.String("region", "us-east-1", "seal stanza region")
	key := flag.String("key", "", "seal stanza kms_key_id (key id, key ARN, alias name or alias ARN)")
	accessKey := flag.String("access-key", "AKIDEXAMPLE", "seal stanza access_key")
	secretKey := flag.String("secret-key", "anything", "seal stanza secret_key")
	flag.Parse()

	var s seal
	switch *impl {
	case "vault":
		s = vaultSeal{hcawskms.NewWrapper()}
	case "openbao":
		s = openbaoSeal{obawskms.NewWrapper()}
	default:
		fmt.Fprintf(os.Stderr, "sealcheck: unknown -impl %q\n", *impl)
		os.Exit(1)
	}
	// The seal "awskms" stanza, as Vault and OpenBao hand it to the wrapper.
	cfg := map[string]string{
		"kms_key_id": *key,
		"region":     *region,
		"endpoint":   *endpoint,
		"access_key": *accessKey,
		"secret_key": *secretKey,
	}
	err := run(context.Background(), s, cfg, flag.Args())
	var we errWrapper
	switch {
	case errors.As(err, &we):
		fmt.Printf("error=%s\n", we.err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "sealcheck: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, s seal, cfg map[string]string, args []string) error {
	if len(args) == 0 {
		return errors.New("want setconfig, encrypt IN OUT or decrypt IN OUT")
	}
	md, err := s.setConfig(ctx, cfg)
	if err != nil {
		return errWrapper{err}
	}
	fmt.Printf("config_key_id=%s\n", md["key_id"])
	fmt.Printf("setconfig_key_id=%s\n", s.keyID(ctx))
	switch {
	case args[0] == "setconfig" && len(args) == 1:
		return nil
	case args[0] == "encrypt" && len(args) == 3:
		pt, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		blob, keyID, mech, err := s.encrypt(ctx, pt)
		if err != nil {
			return errWrapper{err}
		}
		fmt.Printf("blob_key_id=%s\nblob_mechanism=%d\nkey_id=%s\n", keyID, mech, s.keyID(ctx))
		return os.WriteFile(args[2], blob, 0o600)
	case args[0] == "decrypt" && len(args) == 3:
		blob, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		pt, err := s.decrypt(ctx, blob)
		if err != nil {
			return errWrapper{err}
		}
		fmt.Printf("plaintext_bytes=%d\n", len(pt))
		return os.WriteFile(args[2], pt, 0o600)
	}
	return fmt.Errorf("bad arguments %q", args)
}
