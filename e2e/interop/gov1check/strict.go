package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/aws/session"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
	"github.com/aws/aws-sdk-go/service/cloudtrail"
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
	if c.role.accessKey != "" {
		runSessionToken(c)
	}
}

// roleSession is a role session's temporary credentials, as apps on EC2,
// ECS or Lambda get them.
type roleSession struct {
	accessKey, secretKey, token string
	arn                         string // the session's ARN, the caller
}

// sent describes the last request: whether it carried X-Amz-Security-Token
// (and that one) and the headers the SDK signed.
func (c *checker) sent(token string) (tokenSigned bool, text string) {
	last := c.rec.last()
	tokenSigned = hasHeader(last.signed, "x-amz-security-token")
	switch {
	case last.token == "":
		text = "X-Amz-Security-Token not sent"
	case last.token == token:
		text = fmt.Sprintf("X-Amz-Security-Token sent (%d chars)", len(last.token))
	default:
		text = fmt.Sprintf("X-Amz-Security-Token sent (%d chars, not the session's)", len(last.token))
	}
	return tokenSigned, text + ", the SDK signed " + last.signed
}

func hasHeader(signed, name string) bool {
	for _, h := range strings.Split(signed, ";") {
		if h == name {
			return true
		}
	}
	return false
}

// runSessionToken checks the role session's temporary credentials: with
// its session token KMS and Secrets Manager calls pass as the session (and
// CloudTrail names it so); without the token, with another token, and with
// the token on the user's long-term key they are refused with AWS's
// UnrecognizedClientException.
func runSessionToken(c *checker) {
	fmt.Println("== strict auth: a role session's temporary credentials (session token) as the SDK for Go v1 signs them")
	r := c.role
	sess := c.sessionWithToken("us-east-1", r.accessKey, r.secretKey, r.token)
	k, sm := kms.New(sess), secretsmanager.New(sess)
	lk := chk(k.ListKeys(&kms.ListKeysInput{}))(c, "KMS ListKeys with the session token")
	signed, text := c.sent(r.token)
	c.want(signed && c.rec.last().token == r.token, "KMS ListKeys with the session token: %s", text)
	c.pass("KMS ListKeys with the session token: %d keys; %s", len(lk.Keys), text)
	ls := chk(sm.ListSecrets(&secretsmanager.ListSecretsInput{}))(c, "Secrets Manager ListSecrets with the session token")
	signed, text = c.sent(r.token)
	c.want(signed && c.rec.last().token == r.token, "Secrets Manager ListSecrets with the session token: %s", text)
	c.pass("Secrets Manager ListSecrets with the session token: %d secrets; %s", len(ls.SecretList), text)
	key := chk(k.CreateKey(&kms.CreateKeyInput{Description: aws.String("gov1: created by a role session")}))(c, "CreateKey with the session token")
	plain := make([]byte, 32)
	rand.Read(plain)
	ctx := map[string]*string{"via": aws.String("session-token")}
	enc := chk(k.Encrypt(&kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: plain, EncryptionContext: ctx}))(c, "Encrypt with the session token")
	dec := chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx}))(c, "Decrypt with the session token")
	c.want(bytes.Equal(dec.Plaintext, plain) && aws.StringValue(dec.KeyId) == aws.StringValue(key.KeyMetadata.Arn),
		"Decrypt with the session token: plaintext or KeyId %s wrong", aws.StringValue(dec.KeyId))
	c.pass("CreateKey, Encrypt, Decrypt with the session token: %s, %d byte CiphertextBlob decrypts to the 32 bytes", aws.StringValue(key.KeyMetadata.KeyId), len(enc.CiphertextBlob))

	other := make([]byte, 456)
	rand.Read(other)
	for _, tc := range []struct{ label, id, secret, token string }{
		{"with the session's key and no session token", r.accessKey, r.secretKey, ""},
		{"with the session's key and another session token", r.accessKey, r.secretKey, base64.StdEncoding.EncodeToString(other)},
		{"with the user's long-term key and the session token", c.accessKey, c.secretKey, r.token},
	} {
		s := c.sessionWithToken("us-east-1", tc.id, tc.secret, tc.token)
		_, err := kms.New(s).ListKeys(&kms.ListKeysInput{})
		_, text := c.sent(r.token)
		c.wantAuthErrNote("KMS ListKeys "+tc.label, err, "UnrecognizedClientException", invalidToken, "; "+text)
		_, err = secretsmanager.New(s).ListSecrets(&secretsmanager.ListSecretsInput{})
		_, text = c.sent(r.token)
		c.wantAuthErrNote("Secrets Manager ListSecrets "+tc.label, err, "UnrecognizedClientException", invalidToken, "; "+text)
	}
	c.checkSessionEvents()
}

// checkSessionEvents reads the role session's events with CloudTrail's
// LookupEvents (the v1 client, with the session token, not recorded: the
// recorder checks KMS and Secrets Manager responses): every one names the
// caller as AWS names a role session, userIdentity type AssumedRole with
// the session's ARN.
func (c *checker) checkSessionEvents() {
	r := c.role
	ct := cloudtrail.New(session.Must(session.NewSessionWithOptions(session.Options{
		SharedConfigState: session.SharedConfigDisable,
		Config: aws.Config{
			Region:      aws.String("us-east-1"),
			Endpoint:    aws.String(c.endpoint),
			Credentials: credentials.NewStaticCredentials(r.accessKey, r.secretKey, r.token),
			MaxRetries:  aws.Int(0),
			HTTPClient:  &http.Client{Timeout: 60 * time.Second},
		},
	})))
	type identity struct {
		Type           string `json:"type"`
		ARN            string `json:"arn"`
		PrincipalID    string `json:"principalId"`
		AccessKeyID    string `json:"accessKeyId"`
		SessionContext struct {
			SessionIssuer struct {
				ARN string `json:"arn"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
	}
	type event struct {
		EventName    string   `json:"eventName"`
		ErrorCode    string   `json:"errorCode"`
		UserAgent    string   `json:"userAgent"`
		UserIdentity identity `json:"userIdentity"`
	}
	var events []event
	err := ct.LookupEventsPages(&cloudtrail.LookupEventsInput{LookupAttributes: []*cloudtrail.LookupAttribute{
		{AttributeKey: aws.String("AccessKeyId"), AttributeValue: aws.String(r.accessKey)},
	}}, func(p *cloudtrail.LookupEventsOutput, last bool) bool {
		for _, e := range p.Events {
			var ev event
			if err := json.Unmarshal([]byte(aws.StringValue(e.CloudTrailEvent)), &ev); err != nil {
				c.failf("CloudTrail event %s: %v", aws.StringValue(e.EventId), err)
			}
			events = append(events, ev)
		}
		return true
	})
	c.ok("CloudTrail LookupEvents with the session token", err)
	names := map[string]int{}
	var enc *identity
	v1 := 0
	for i, e := range events {
		u := e.UserIdentity
		c.want(u.Type == "AssumedRole" && u.ARN == r.arn && u.AccessKeyID == r.accessKey,
			"CloudTrail %s by %s: userIdentity type %q arn %q accessKeyId %q, want AssumedRole %s", e.EventName, r.accessKey, u.Type, u.ARN, u.AccessKeyID, r.arn)
		if e.ErrorCode == "" {
			names[e.EventName]++
			if strings.HasPrefix(e.UserAgent, "aws-sdk-go/") {
				v1++
			}
		}
		if e.EventName == "Encrypt" {
			enc = &events[i].UserIdentity
		}
	}
	var list []string
	for _, n := range []string{"ListKeys", "ListSecrets", "CreateKey", "Encrypt", "Decrypt"} {
		c.want(names[n] > 0, "CloudTrail: no %s event of %s (%v)", n, r.accessKey, names)
	}
	for n, k := range names {
		list = append(list, fmt.Sprintf("%s %d", n, k))
	}
	sort.Strings(list)
	// sessionContext.sessionIssuer names the role, as AWS records a role
	// session: arn:aws:sts::<acct>:assumed-role/<name>/<session> was
	// issued by arn:aws:iam::<acct>:role/<name> (the role has no path here).
	issuer := enc.SessionContext.SessionIssuer.ARN
	parts := strings.Split(r.arn, ":")
	name := strings.Split(parts[len(parts)-1], "/")
	wantIssuer := "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + name[1]
	c.want(issuer == wantIssuer, "CloudTrail: sessionContext.sessionIssuer.arn %q, want %q", issuer, wantIssuer)
	c.pass("CloudTrail LookupEvents (the v1 client, with the session token) by AccessKeyId %s: %d events (%s), %d of them by aws-sdk-go; every userIdentity type AssumedRole, arn %s, principalId %s, sessionIssuer %s",
		r.accessKey, len(events), strings.Join(list, ", "), v1, r.arn, enc.PrincipalID, issuer)
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
	c.wantAuthErrNote(what, err, code, prefix, "")
}

// wantAuthErrNote is wantAuthErr with note appended to the PASS line.
func (c *checker) wantAuthErrNote(what string, err error, code, prefix, note string) {
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
	c.pass("%s: awserr Code() %s, Message() %q, StatusCode() 400, RequestID() %s%s%s", what, rf.Code(), msg, rf.RequestID(), signed, note)
}
