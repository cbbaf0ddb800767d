package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestKMSImportedMaterialOperations: on a key of origin AWS_KMS the three
// operations of imported key material answer as AWS does:
// UnsupportedOperationException "<key ARN> origin is AWS_KMS which is not
// valid for this operation." (GetParametersForImport's text is AWS's, from
// LocalStack's AWS-validated snapshot test_get_parameters_for_import).
func TestKMSImportedMaterialOperations(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)
	md := createKey(t, c, nil)
	arn := aws.ToString(md.Arn)
	want := arn + " origin is AWS_KMS which is not valid for this operation."
	var err error

	for _, id := range []string{aws.ToString(md.KeyId), arn} {
		_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa4096})
		wantExactAPIError(t, err, "UnsupportedOperationException", want)
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: []byte("token"),
			EncryptedKeyMaterial: []byte("material"), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
		wantExactAPIError(t, err, "UnsupportedOperationException", want)
		_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id)})
		wantExactAPIError(t, err, "UnsupportedOperationException", want)
	}

	// A disabled key and a key pending deletion: still their origin.
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "UnsupportedOperationException", want)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072})
	wantExactAPIError(t, err, "UnsupportedOperationException", want)

	// An unknown key, an alias (these operations take a key id or ARN:
	// Keyfort's answer for every such operation).
	unknown := "arn:aws:kms:us-east-1:" + aws.ToString(md.AWSAccountId) + ":key/00000000-0000-4000-8000-000000000000"
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(unknown), ImportToken: []byte("t"), EncryptedKeyMaterial: []byte("m"),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantExactAPIError(t, err, "NotFoundException", "Key '"+unknown+"' does not exist")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/imported"), TargetKeyId: createKey(t, c, nil).KeyId})
	mustNoErr(t, err, "CreateAlias")
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String("alias/imported")})
	wantExactAPIError(t, err, "InvalidArnException", "Key Aliases are not supported for this operation.")

	// CloudTrail records each call, refused, with its parameters and
	// without the token or the material.
	var seen int
	for _, e := range readAudit(t, srv) {
		if e.EventName != "GetParametersForImport" && e.EventName != "ImportKeyMaterial" && e.EventName != "DeleteImportedKeyMaterial" {
			continue
		}
		seen++
		if e.ErrorCode == "" || e.EventSource != "kms.amazonaws.com" {
			t.Errorf("%s event: errorCode %q, eventSource %q", e.EventName, e.ErrorCode, e.EventSource)
		}
		if p := string(e.RequestParameters); strings.Contains(p, "dG9rZW4") || strings.Contains(p, "bWF0ZXJpYWw") || strings.Contains(p, "material\"") {
			t.Errorf("%s event holds the import token or the material: %s", e.EventName, p)
		}
		if e.EventName == "GetParametersForImport" && e.ErrorCode == "UnsupportedOperationException" &&
			!strings.Contains(string(e.RequestParameters), `"wrappingAlgorithm":"RSAES_OAEP_SHA_256"`) &&
			!strings.Contains(string(e.RequestParameters), `"wrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256"`) {
			t.Errorf("GetParametersForImport event parameters: %s", e.RequestParameters)
		}
	}
	if seen != 10 { // the 10 calls that passed validation
		t.Errorf("%d audit events of the import operations, want 10", seen)
	}
}

// TestKMSCustomKeyStoresNone: in an account without custom key stores the
// operations that read or change one answer as AWS does: an empty list,
// CustomKeyStoreNotFoundException for any store named; an AWS CloudHSM key
// store's cluster is never found.
func TestKMSCustomKeyStoresNone(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)

	out, err := c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{})
	mustNoErr(t, err, "DescribeCustomKeyStores")
	if out.CustomKeyStores == nil || len(out.CustomKeyStores) != 0 || out.Truncated || out.NextMarker != nil {
		t.Fatalf("DescribeCustomKeyStores = %+v, want an empty list, not truncated", out)
	}
	// The raw answer lists no store, as an empty array.
	status, body := rawCall(t, srv, "kms", "DescribeCustomKeyStores", `{"Limit":5}`)
	var raw map[string]json.RawMessage
	if status != 200 || json.Unmarshal(body, &raw) != nil || string(raw["CustomKeyStores"]) != "[]" || string(raw["Truncated"]) != "false" {
		t.Fatalf("raw DescribeCustomKeyStores: %d %s", status, body)
	}

	_, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", "Custom key store 'cks-1234567890abcdef0' does not exist.")
	_, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("ExampleKeyStore")})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", "Custom key store 'ExampleKeyStore' does not exist.")
	_, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{Marker: aws.String("bm90LWEtbWFya2Vy")})
	wantExactAPIError(t, err, "InvalidMarkerException", "The marker is invalid.")
	_, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{Limit: aws.Int32(1001)})
	wantAPIError(t, err, "ValidationException", "limit")

	id := aws.String("cks-1234567890abcdef0")
	wantNone := "Custom key store 'cks-1234567890abcdef0' does not exist."
	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: id})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", wantNone)
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: id})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", wantNone)
	_, err = c.UpdateCustomKeyStore(ctx, &kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: id, NewCustomKeyStoreName: aws.String("renamed")})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", wantNone)
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: id})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", wantNone)
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{CustomKeyStoreId: id})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", wantNone)

	_, err = c.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("ExampleKeyStore"),
		CloudHsmClusterId: aws.String("cluster-abcdefghijk"), KeyStorePassword: aws.String("kmsPswd"), TrustAnchorCertificate: aws.String("cert")})
	// No CloudHSM cluster is ever reachable (external key stores:
	// kms_xks_test.go).
	wantAPIError(t, err, "CloudHsmClusterNotFoundException", "cluster-abcdefghijk")

	events := 0
	for _, e := range readAudit(t, srv) {
		if strings.Contains(e.EventName, "CustomKeyStore") {
			events++
			if e.EventName != "DescribeCustomKeyStores" && e.ErrorCode != "CustomKeyStoreNotFoundException" && e.ErrorCode != "CloudHsmClusterNotFoundException" {
				t.Errorf("%s event errorCode %q", e.EventName, e.ErrorCode)
			}
		}
	}
	if events < 9 {
		t.Errorf("%d audit events of the custom key store operations, want at least 9", events)
	}
}
