package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/request"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
	"github.com/aws/aws-sdk-go/service/kms"
	"github.com/aws/aws-sdk-go/service/secretsmanager"
)

// AWS's texts for requests it cannot authenticate (the same Keyfort's
// e2e/auth_strict_test.go and e2e/smoke/smoke.py assert).
const (
	signatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	invalidToken = "The security token included in the request is invalid."
)

// runStrict checks, against a server in strict auth mode, that requests
// the v1 signer signs wrongly are refused with AWS's errors: a wrong secret
// key, an unknown access key, and the SDK's own signer on a clock 20
// minutes behind and ahead (swapped in for v4.SignRequestHandler: aws.Config
// has no clock). Every other check of gov1check then shows that what the
// v1 signer signs with the right key is accepted.
func runStrict(c *checker) {
	fmt.Println("== strict auth: requests the SDK for Go v1 signs wrongly")
	wrong := c.sessionAs("us-east-1", c.accessKey, c.secretKey+"-wrong")
	_, err := kms.New(wrong).ListKeys(&kms.ListKeysInput{})
	c.wantAuthErr("KMS ListKeys with a wrong secret key", err, "InvalidSignatureException", signatureMismatch+"\n\nThe Canonical String for this request should have been\n'POST\n/\n\n")
	_, err = secretsmanager.New(wrong).ListSecrets(&secretsmanager.ListSecretsInput{})
	c.wantAuthErr("Secrets Manager ListSecrets with a wrong secret key", err, "InvalidSignatureException", signatureMismatch+"\n\nThe Canonical String for this request should have been\n'POST\n/\n\n")

	unknown := c.sessionAs("us-east-1", "AKIAUNKNOWN000000001", c.secretKey)
	_, err = kms.New(unknown).ListKeys(&kms.ListKeysInput{})
	c.wantAuthErr("KMS ListKeys with an unknown access key", err, "UnrecognizedClientException", invalidToken)
	_, err = secretsmanager.New(unknown).ListSecrets(&secretsmanager.ListSecretsInput{})
	c.wantAuthErr("Secrets Manager ListSecrets with an unknown access key", err, "UnrecognizedClientException", invalidToken)

	// A key works in its principal's partition only: the aws user's key
	// signed for cn-north-1, and the aws-cn user's for us-east-1, are keys
	// AWS does not know there.
	_, err = kms.New(c.sessionAs("cn-north-1", c.accessKey, c.secretKey)).ListKeys(&kms.ListKeysInput{})
	c.wantAuthErr("KMS ListKeys in cn-north-1 with the aws partition's key", err, "UnrecognizedClientException", invalidToken)
	_, err = secretsmanager.New(c.sessionAs("us-east-1", c.cnAccessKey, c.secretKey)).ListSecrets(&secretsmanager.ListSecretsInput{})
	c.wantAuthErr("Secrets Manager ListSecrets in us-east-1 with the aws-cn partition's key", err, "UnrecognizedClientException", invalidToken)

	for _, skew := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
		k := kms.New(c.session("us-east-1"))
		skewSigner(&k.Handlers, skew)
		_, err = k.ListKeys(&kms.ListKeysInput{})
		prefix := "Signature expired: "
		if skew > 0 {
			prefix = "Signature not yet current: "
		}
		c.wantAuthErr(fmt.Sprintf("KMS ListKeys signed on a clock %v off", skew), err, "InvalidSignatureException", prefix)
		sm := secretsmanager.New(c.session("us-east-1"))
		skewSigner(&sm.Handlers, skew)
		_, err = sm.ListSecrets(&secretsmanager.ListSecretsInput{})
		c.wantAuthErr(fmt.Sprintf("Secrets Manager ListSecrets signed on a clock %v off", skew), err, "InvalidSignatureException", prefix)
	}
	// (For the clock behind, the v1 SDK itself prints "request expired,
	// resigning": core.ValidateReqSigHandler re-signs a request signed more
	// than 5 minutes ago, here with the same skewed clock.)
	// The same clients with the right key and clock are accepted.
	_, err = kms.New(c.session("us-east-1")).ListKeys(&kms.ListKeysInput{Limit: aws.Int64(1)})
	c.ok("KMS ListKeys signed right", err)
	c.pass("the same calls signed with the right key on the right clock are accepted (as is everything below)")
}

// skewSigner replaces the v4 signing handler of h by the same signer
// reading a clock off by skew.
func skewSigner(h *request.Handlers, skew time.Duration) {
	h.Sign.Swap(v4.SignRequestHandler.Name, request.NamedHandler{Name: v4.SignRequestHandler.Name, Fn: func(r *request.Request) {
		v4.SignSDKRequestWithCurrentTime(r, func() time.Time { return time.Now().Add(skew) })
	}})
}

// wantAuthErr checks an authentication error: HTTP 400, Code() code and a
// Message() starting with prefix, the RequestID() of the response.
func (c *checker) wantAuthErr(what string, err error, code, prefix string) {
	if err == nil {
		c.failf("%s: no error, want %s", what, code)
	}
	rf, ok := err.(awserr.RequestFailure)
	if !ok {
		c.failf("%s: error %T %v is not an awserr.RequestFailure", what, err, err)
	}
	last := c.rec.last()
	if rf.StatusCode() != 400 || rf.RequestID() == "" || rf.RequestID() != last.requestID {
		c.failf("%s: StatusCode() %d RequestID() %q, want 400 and the x-amzn-RequestId header %q", what, rf.StatusCode(), rf.RequestID(), last.requestID)
	}
	if rf.Code() != code || !strings.HasPrefix(rf.Message(), prefix) {
		c.deviation("%s: v1 sees Code() %q Message() %q, AWS answers %q %q...", what, rf.Code(), rf.Message(), code, prefix)
		return
	}
	msg, signed := rf.Message(), ""
	if i := strings.Index(msg, "\n"); i >= 0 {
		// A mismatch quotes the canonical request: its second-to-last
		// line is the headers the SDK signed.
		if _, canon, ok := strings.Cut(msg, "should have been\n'"); ok {
			canon, _, _ = strings.Cut(canon, "'")
			if lines := strings.Split(canon, "\n"); len(lines) >= 2 {
				signed = "; the SDK signed " + lines[len(lines)-2]
			}
		}
		msg = msg[:i] + " [...the canonical request and string to sign]"
	}
	c.pass("%s: awserr Code() %s, Message() %q, StatusCode() 400, RequestID() %s%s", what, rf.Code(), msg, rf.RequestID(), signed)
}
