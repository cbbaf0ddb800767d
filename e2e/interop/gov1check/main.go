// Command gov1check drives a running Keyfort with the AWS SDK for Go v1
// (github.com/aws/aws-sdk-go) over every KMS and Secrets Manager operation,
// and with AWS's Secrets Manager caching client (v1 and v2). It records every
// HTTP response and checks each against the botocore models. The custom key
// store operations (-xks-*) go to the external key store proxies the server
// reaches (xks.go). Run it through e2e/interop/gov1.sh, which starts the
// server and the proxies.
//
// Output: one "PASS: " line per check, "DEVIATION: " lines where Keyfort
// answers differently from AWS in a way a client sees, "FAIL: " and exit 1 at
// the first failed check. Exit status: 0 all passed, 1 a check failed, 3 all
// passed with deviations.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/kms"
	"github.com/aws/aws-sdk-go/service/secretsmanager"
)

const account = "123456789012"

type checker struct {
	endpoint string
	// accessKey and secretKey sign every request (-access-key, -secret-key);
	// cnAccessKey, with the same secret, those for the China regions
	// (-cn-access-key; a key works in its principal's partition only).
	accessKey, secretKey, cnAccessKey string
	// role is a role session's temporary credentials (-role-*), checked
	// by -strict when set.
	role    roleSession
	rec     *recorder
	devs    []string
	devSeen map[string]bool
}

func (c *checker) pass(format string, a ...any) { fmt.Printf("PASS: "+format+"\n", a...) }

func (c *checker) failf(format string, a ...any) {
	fmt.Printf("FAIL: "+format+"\n", a...)
	os.Exit(1)
}

func (c *checker) deviation(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if c.devSeen[s] {
		return
	}
	c.devSeen[s] = true
	c.devs = append(c.devs, s)
	fmt.Printf("DEVIATION: %s\n", s)
}

// chk(call())(c, what) returns call's value, or fails with what.
func chk[T any](v T, err error) func(c *checker, what string) T {
	return func(c *checker, what string) T {
		if err != nil {
			c.failf("%s: %v", what, err)
		}
		return v
	}
}

func (c *checker) ok(what string, err error) {
	if err != nil {
		c.failf("%s: %v", what, err)
	}
}

func (c *checker) want(cond bool, format string, a ...any) {
	if !cond {
		c.failf(format, a...)
	}
}

// session builds a v1 session for region against the Keyfort endpoint: static
// credentials, no retries, no shared config, every response recorded.
func (c *checker) session(region string) *session.Session {
	if strings.HasPrefix(region, "cn-") {
		return c.sessionAs(region, c.cnAccessKey, c.secretKey)
	}
	return c.sessionAs(region, c.accessKey, c.secretKey)
}

// sessionAs is session signing with the access key id and secret given.
func (c *checker) sessionAs(region, id, secret string) *session.Session {
	return c.sessionWithToken(region, id, secret, "")
}

// sessionWithToken is sessionAs with a session token ("" for none).
func (c *checker) sessionWithToken(region, id, secret, token string) *session.Session {
	return session.Must(session.NewSessionWithOptions(session.Options{
		SharedConfigState: session.SharedConfigDisable,
		Config: aws.Config{
			Region:      aws.String(region),
			Endpoint:    aws.String(c.endpoint),
			Credentials: credentials.NewStaticCredentials(id, secret, token),
			MaxRetries:  aws.Int(0),
			HTTPClient:  &http.Client{Transport: c.rec, Timeout: 60 * time.Second},
		},
	}))
}

// wantErr checks a v1 error: awserr.Error's Code and Message (msg "-" means
// not asserted), awserr.RequestFailure's StatusCode and RequestID (the
// x-amzn-RequestId header of the last response). It prints what the user sees.
func (c *checker) wantErr(what string, err error, code, msg string, status int) {
	if err == nil {
		c.failf("%s: no error, want %s", what, code)
	}
	ae, ok := err.(awserr.Error)
	if !ok {
		c.failf("%s: error %T %v is not an awserr.Error", what, err, err)
	}
	rf, ok := err.(awserr.RequestFailure)
	if !ok {
		c.failf("%s: error %T is not an awserr.RequestFailure", what, err)
	}
	last := c.rec.last()
	if rf.StatusCode() != status || rf.RequestID() == "" || rf.RequestID() != last.requestID {
		c.failf("%s: StatusCode() %d RequestID() %q, want %d and the x-amzn-RequestId header %q", what, rf.StatusCode(), rf.RequestID(), status, last.requestID)
	}
	if ae.Code() != code || (msg != "-" && ae.Message() != msg) {
		c.deviation("%s: v1 sees Code() %q Message() %q, AWS answers %q %q", what, ae.Code(), ae.Message(), code, msg)
		return
	}
	c.pass("%s: awserr Code() %s, Message() %q, StatusCode() %d, RequestID() %s; body %s", what, ae.Code(), ae.Message(), rf.StatusCode(), rf.RequestID(), last.body)
}

func main() {
	endpoint := flag.String("endpoint", "", "Keyfort URL, e.g. http://127.0.0.1:4599")
	models := flag.String("models", "", "botocore data directory (holds kms/2014-11-01/service-2.json.gz)")
	webhook := flag.String("webhook", "", "listen address of the rotation webhook (the server's config maps "+rotationLambda+" to http://ADDR/rotate)")
	wire := flag.String("wire", "", "file to write every response to (JSON lines)")
	only := flag.String("only", "kms,sm,cache", "parts to run")
	accessKey := flag.String("access-key", "AKIDEXAMPLE", "access key id every request is signed with")
	secretKey := flag.String("secret-key", "anything", "secret access key every request is signed with")
	cnAccessKey := flag.String("cn-access-key", "", "access key id of the China regions' requests, with -secret-key (default: -access-key)")
	var role roleSession
	flag.StringVar(&role.accessKey, "role-access-key", "", "with -strict: a role session's access key id (ASIA...), also checked with its session token")
	flag.StringVar(&role.secretKey, "role-secret-key", "", "the role session's secret access key")
	flag.StringVar(&role.token, "role-session-token", "", "the role session's session token")
	flag.StringVar(&role.arn, "role-session-arn", "", "the role session's ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>)")
	var x xksConfig
	flag.StringVar(&x.endpoint, "xks-endpoint", "", "XksProxyUriEndpoint of an external key store proxy the server reaches (https://HOST): the custom key store operations are checked with it ($GOV1CHECK_XKS_SECRET holds its credential's secret)")
	flag.StringVar(&x.path, "xks-path", "", "the proxy's XksProxyUriPath ([/prefix]/kms/xks/v1)")
	flag.StringVar(&x.endpoint2, "xks-endpoint2", "", "XksProxyUriEndpoint of a second proxy, with the same credential (a second store, created and deleted)")
	flag.StringVar(&x.path2, "xks-path2", "", "the second proxy's XksProxyUriPath")
	flag.StringVar(&x.keyID, "xks-key", "", "an external key of the first proxy (AES_256, ENABLED, ENCRYPT and DECRYPT)")
	flag.StringVar(&x.accessKey, "xks-access-key", "", "the proxies' credential's access key id")
	strict := flag.Bool("strict", false, "the server verifies signatures (--auth strict) and -access-key, -secret-key are in its credentials file: also check that a wrong secret, an unknown access key and a skewed clock are refused")
	flag.Parse()
	x.secret = os.Getenv("GOV1CHECK_XKS_SECRET")
	if *cnAccessKey == "" {
		*cnAccessKey = *accessKey
	}
	c := &checker{endpoint: *endpoint, accessKey: *accessKey, secretKey: *secretKey, cnAccessKey: *cnAccessKey, role: role, devSeen: map[string]bool{}}
	var err error
	c.rec, err = newRecorder(c, *models)
	if err != nil {
		c.failf("%v", err)
	}
	if *wire != "" {
		f, err := os.Create(*wire)
		if err != nil {
			c.failf("%v", err)
		}
		defer f.Close()
		c.rec.wire = f
	}
	c.pass("botocore models loaded: kms %s (%d operations), secretsmanager %s (%d operations)",
		c.rec.models["kms"].Metadata.APIVersion, len(c.rec.models["kms"].Operations),
		c.rec.models["secretsmanager"].Metadata.APIVersion, len(c.rec.models["secretsmanager"].Operations))

	sess := c.session("us-east-1")
	k := kms.New(sess)
	sm := secretsmanager.New(sess)
	if *strict {
		runStrict(c)
	}
	if strings.Contains(*only, "kms") {
		runKMS(c, k)
		runXKS(c, k, x)
	}
	if strings.Contains(*only, "sm") {
		runSM(c, sm, *webhook)
	}
	if strings.Contains(*only, "cache") {
		runCache(c, sm)
	}
	c.summary()
	if len(c.devs) > 0 {
		os.Exit(3)
	}
}

// summary prints which operations answered 200 and were checked.
func (c *checker) summary() {
	for _, svc := range []string{"kms", "secretsmanager"} {
		m := c.rec.models[svc]
		var ok, not []string
		for op := range m.Operations {
			if c.rec.okOps[svc+"."+op] > 0 {
				ok = append(ok, op)
			} else {
				not = append(not, op)
			}
		}
		sort.Strings(ok)
		sort.Strings(not)
		if len(ok) > 0 {
			c.pass("%s: %d of %d operations answered 200 and were checked against the model; without a 200: %s", svc, len(ok), len(m.Operations), strings.Join(not, " "))
		}
	}
	c.pass("%d responses recorded (Content-Type and x-amzn-RequestId checked on each), %d successful responses checked member by member against the botocore models, %d error bodies checked against their error shapes",
		c.rec.n, c.rec.nOK, c.rec.nErr)
}
