// Command k8skmscheck is what kube-apiserver does with a KMS plugin, one call
// at a time, for e2e/interop/k8skms.sh: it dials the plugin's unix socket
// and calls the KMS v2 (k8s.io/kms/apis/v2) or v1 (v1beta1) API. It is its
// own module so that Keyfort's go.mod never sees k8s.io/kms or gRPC.
//
//	k8skmscheck -socket S -api v2 -op status
//	k8skmscheck -socket S -api v2 -op encrypt -in PLAINTEXT -out CIPHERTEXT
//	k8skmscheck -socket S -api v2 -op decrypt -in CIPHERTEXT -out PLAINTEXT
//
// It prints key=value lines (status: version, healthz, keyid; encrypt:
// keyid, bytes). A call the plugin refuses prints error=<its text> and
// exits 2; anything else that goes wrong exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	v1 "k8s.io/kms/apis/v1beta1"
	v2 "k8s.io/kms/apis/v2"
)

func main() {
	socket := flag.String("socket", "", "the plugin's unix socket")
	api := flag.String("api", "v2", "v2 or v1")
	op := flag.String("op", "status", "status, encrypt or decrypt")
	in := flag.String("in", "", "input file (encrypt, decrypt)")
	out := flag.String("out", "", "output file (encrypt, decrypt)")
	uid := flag.String("uid", "k8skmscheck", "the request's UID (v2)")
	flag.Parse()
	if err := run(*socket, *api, *op, *in, *out, *uid); err != nil {
		if s, ok := status.FromError(err); ok {
			fmt.Printf("error=%s\n", s.Message())
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "k8skmscheck:", err)
		os.Exit(1)
	}
}

func run(socket, api, op, in, out, uid string) error {
	if socket == "" {
		return fmt.Errorf("-socket is required")
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	// kube-apiserver gives a KMS call a few seconds; the plugin's own AWS
	// SDK retries fit in this.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var data []byte
	if op == "encrypt" || op == "decrypt" {
		if data, err = os.ReadFile(in); err != nil {
			return err
		}
	}
	var result []byte
	switch api + " " + op {
	case "v2 status":
		r, err := v2.NewKeyManagementServiceClient(conn).Status(ctx, &v2.StatusRequest{}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		fmt.Printf("version=%s\nhealthz=%s\nkeyid=%s\n", r.Version, r.Healthz, r.KeyId)
		return nil
	case "v2 encrypt":
		r, err := v2.NewKeyManagementServiceClient(conn).Encrypt(ctx, &v2.EncryptRequest{Plaintext: data, Uid: uid}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		fmt.Printf("keyid=%s\nannotations=%d\n", r.KeyId, len(r.Annotations))
		result = r.Ciphertext
	case "v2 decrypt":
		r, err := v2.NewKeyManagementServiceClient(conn).Decrypt(ctx, &v2.DecryptRequest{Ciphertext: data, Uid: uid}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		result = r.Plaintext
	case "v1 status":
		r, err := v1.NewKeyManagementServiceClient(conn).Version(ctx, &v1.VersionRequest{Version: "v1beta1"}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		fmt.Printf("version=%s\nruntime=%s\nruntimeversion=%s\n", r.Version, r.RuntimeName, r.RuntimeVersion)
		return nil
	case "v1 encrypt":
		r, err := v1.NewKeyManagementServiceClient(conn).Encrypt(ctx, &v1.EncryptRequest{Version: "v1beta1", Plain: data}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		result = r.Cipher
	case "v1 decrypt":
		r, err := v1.NewKeyManagementServiceClient(conn).Decrypt(ctx, &v1.DecryptRequest{Version: "v1beta1", Cipher: data}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		result = r.Plain
	default:
		return fmt.Errorf("unknown -api %q -op %q", api, op)
	}
	fmt.Printf("bytes=%d\n", len(result))
	return os.WriteFile(out, result, 0o600)
}
