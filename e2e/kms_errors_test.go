package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// wantExactAPIError checks the error code and the whole message.
func wantExactAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, msg)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error, want %s", err, code)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() != msg {
		t.Fatalf("error = %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

// TestKMSErrorTextsMatchAWS asserts the codes and messages that AWS answered
// in LocalStack's AWS-validated snapshot tests (tests/aws/services/kms/
// test_kms.snapshot.json); each case names the snapshot test it comes from.
func TestKMSErrorTextsMatchAWS(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ctx := ctxT(t)
	md := createKey(t, c, nil)
	arn := aws.ToString(md.Arn)
	missing := "11111111-2222-4333-8444-555555555555"
	missingARN := "arn:aws:kms:us-east-1:123456789012:key/" + missing

	call := func(f func() error) error { return f() }
	tags := func(n int) []types.Tag {
		out := make([]types.Tag, n)
		for i := range out {
			out[i] = tg("k"+strings.Repeat("x", i), "v")
		}
		return out
	}
	cases := []struct {
		name, code, msg string
		err             error
	}{
		// test_get_key_invalid_uuid
		{"DescribeKey invalid key id", "NotFoundException", "Invalid keyId 'fake-key-id'", call(func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("fake-key-id")})
			return err
		})},
		{"DescribeKey invalid mrk id", "NotFoundException", "Invalid keyId 'mrk-fake-key-id'", call(func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("mrk-fake-key-id")})
			return err
		})},
		// test_get_key_does_not_exist
		{"DescribeKey unknown id", "NotFoundException", "Key '" + missingARN + "' does not exist", call(func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(missing)})
			return err
		})},
		{"DescribeKey unknown ARN", "NotFoundException", "Key '" + missingARN + "' does not exist", call(func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(missingARN)})
			return err
		})},
		// test_get_key_in_different_region
		{"DescribeKey other region by id", "NotFoundException", "Key 'arn:aws:kms:eu-west-1:123456789012:key/" + aws.ToString(md.KeyId) + "' does not exist", call(func() error {
			_, err := srv.KMS("eu-west-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
			return err
		})},
		{"DescribeKey other region by ARN", "NotFoundException", "Invalid arn us-east-1", call(func() error {
			_, err := srv.KMS("eu-west-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.Arn})
			return err
		})},
		// test_create_alias
		{"CreateAlias without prefix", "ValidationException", `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`, call(func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("no-prefix"), TargetKeyId: md.KeyId})
			return err
		})},
		// test_create_key_with_invalid_tag_key[lowercase_prefix|uppercase_prefix]
		{"CreateKey aws: tag", "TagException", "Tags beginning with aws: are reserved", call(func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{tg("aws:x", "v")}})
			return err
		})},
		{"CreateKey AWS: tag", "TagException", "Tags beginning with aws: are reserved", call(func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{tg("AWS:x", "v")}})
			return err
		})},
		// test_create_key_with_invalid_tag_key[too_long_key]
		{"CreateKey tag key too long", "ValidationException", "1 validation error detected: Value '" + strings.Repeat("a", 129) + "' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128", call(func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{tg(strings.Repeat("a", 129), "v")}})
			return err
		})},
		// test_create_key_with_too_many_tags_raises_error
		{"CreateKey 51 tags", "TagException", "Too many tags", call(func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Tags: tags(51)})
			return err
		})},
		// test_tag_existing_key_with_invalid_tag_key
		{"TagResource aws: tag", "TagException", "Tags beginning with aws: are reserved", call(func() error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("aws:x", "v")}})
			return err
		})},
		// test_tag_key_with_duplicate_tag_keys_raises_error
		{"TagResource duplicate keys", "TagException", "Duplicate tag keys", call(func() error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("a", "1"), tg("a", "2")}})
			return err
		})},
		// test_key_with_long_tag_value_raises_error
		{"TagResource tag value too long", "ValidationException", "1 validation error detected: Value '" + strings.Repeat("v", 257) + "' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256", call(func() error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("k", strings.Repeat("v", 257))}})
			return err
		})},
		// test_generate_random_invalid_number_of_bytes[None|0|1025]
		{"GenerateRandom without NumberOfBytes", "ValidationException", "NumberOfBytes is required.", call(func() error {
			_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{})
			return err
		})},
		{"GenerateRandom 0", "ValidationException", "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1", call(func() error {
			_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(0)})
			return err
		})},
		{"GenerateRandom 1025", "ValidationException", "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024", call(func() error {
			_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
			return err
		})},
		// test_plaintext_size_for_encrypt
		{"Encrypt 4097 bytes", "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096", call(func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: make([]byte, 4097)})
			return err
		})},
		// test_generate_data_key_pair_dry_run (same text on every DryRun)
		{"Encrypt DryRun", "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.", call(func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
			return err
		})},
		// test_rotate_key_on_demand_raises_error_given_key_that_does_not_exist
		{"RotateKeyOnDemand unknown key", "NotFoundException", "Key '" + missingARN + "' does not exist", call(func() error {
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(missing)})
			return err
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantExactAPIError(t, tc.err, tc.code, tc.msg) })
	}

	// test_encrypt_decrypt_encryption_context: InvalidCiphertextException
	// with an empty message, for a missing context and for a bad blob.
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("p"), EncryptionContext: map[string]string{"a": "b"}})
	mustNoErr(t, err, "Encrypt")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext blob")})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	// On the wire AWS sends no message member at all
	// ({"__type":"InvalidCiphertextException"}, aws/aws-nitro-enclaves-sdk-c
	// issue 68; a null message in the Java SDK, aws/aws-sdk-java issue 1323):
	// the Go SDK's typed error then has a nil Message, not a pointer to "".
	var ice *types.InvalidCiphertextException
	if !errors.As(err, &ice) || ice.Message != nil {
		t.Errorf("Decrypt of a bad blob: error %#v, want *types.InvalidCiphertextException with a nil Message", err)
	}
	status, raw := rawCall(t, srv, "kms", "Decrypt", `{"CiphertextBlob":"bm90IGEgY2lwaGVydGV4dCBibG9i"}`)
	if status != http.StatusBadRequest || string(raw) != `{"__type":"InvalidCiphertextException"}` {
		t.Errorf("raw Decrypt of a bad blob = HTTP %d %s, want 400 {\"__type\":\"InvalidCiphertextException\"}", status, raw)
	}
	// An error with a message keeps its member.
	status, raw = rawCall(t, srv, "kms", "DescribeKey", `{"KeyId":"`+missing+`"}`)
	if status != http.StatusBadRequest || string(raw) != `{"__type":"NotFoundException","message":"Key '`+missingARN+`' does not exist"}` {
		t.Errorf("raw DescribeKey of a missing key = HTTP %d %s", status, raw)
	}

	// test_re_encrypt_incorrect_source_key / test_error_messaging_for_invalid_keys
	other := createKey(t, c, nil)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}, KeyId: other.KeyId})
	wantExactAPIError(t, err, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"a": "b"}, SourceKeyId: other.KeyId, DestinationKeyId: md.KeyId})
	wantExactAPIError(t, err, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")

	// test_error_messaging_for_invalid_keys: a key of the wrong usage is
	// InvalidKeyUsageException naming the key, its usage and the operation
	// (sops shows the Encrypt text when pointed at a signing key).
	hmacKey := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac224, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	signKey := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: md.KeyId, Message: []byte("some important message"), MacAlgorithm: types.MacAlgorithmSpecHmacSha224})
	wantExactAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: hmacKey.KeyId, Message: []byte("test message 123!@#"), MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	wantExactAPIError(t, err, "InvalidKeyUsageException", aws.ToString(hmacKey.Arn)+" key usage is GENERATE_VERIFY_MAC which is not valid for Sign.")
	_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: []byte("test message"), MessageType: types.MessageTypeRaw, Signature: []byte("random text"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantExactAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCRYPT_DECRYPT which is not valid for Verify.")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: signKey.KeyId, Plaintext: []byte("test message 123!@#")})
	wantExactAPIError(t, err, "InvalidKeyUsageException", aws.ToString(signKey.Arn)+" key usage is SIGN_VERIFY which is not valid for Encrypt.")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}, KeyId: hmacKey.KeyId})
	wantExactAPIError(t, err, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
	// Not recorded: the other operations that take an encryption key name
	// themselves the same way (ReEncrypt for its destination key).
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: hmacKey.KeyId, KeySpec: types.DataKeySpecAes256})
	wantExactAPIError(t, err, "InvalidKeyUsageException", aws.ToString(hmacKey.Arn)+" key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKey.")
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"a": "b"}, DestinationKeyId: signKey.KeyId})
	wantExactAPIError(t, err, "InvalidKeyUsageException", aws.ToString(signKey.Arn)+" key usage is SIGN_VERIFY which is not valid for ReEncrypt.")

	// test_rotate_key_on_demand_raises_error_given_key_is_disabled
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: other.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: other.KeyId})
	wantExactAPIError(t, err, "DisabledException", aws.ToString(other.Arn)+" is disabled.")
	_ = arn
}
