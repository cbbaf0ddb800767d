package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	credsv2 "github.com/aws/aws-sdk-go-v2/credentials"
	smv2 "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/service/secretsmanager"
	cachev1 "github.com/aws/aws-secretsmanager-caching-go/secretcache"
	cachev2 "github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"
)

// secretCache is what both caching clients offer.
type secretCache interface {
	GetSecretString(secretID string) (string, error)
	GetSecretStringWithStage(secretID, versionStage string) (string, error)
	GetSecretBinary(secretID string) ([]byte, error)
}

const cacheTTL = 2 * time.Second

func runCache(c *checker, sm *secretsmanager.SecretsManager) {
	fmt.Println("== Secrets Manager caching client (aws-secretsmanager-caching-go)")
	v1, err := cachev1.New(func(x *cachev1.Cache) { x.Client = sm; x.CacheItemTTL = int64(cacheTTL) })
	c.ok("secretcache v1 New", err)
	cacheChecks(c, sm, "v1.2.0 (aws-sdk-go v1)", "cache-v1", v1, func() secretCache {
		n, _ := cachev1.New(func(x *cachev1.Cache) { x.Client = sm; x.CacheItemTTL = int64(cacheTTL) })
		return n
	})
	client := smv2.New(smv2.Options{Region: "us-east-1", BaseEndpoint: awsv2.String(c.endpoint), RetryMaxAttempts: 1,
		Credentials: credsv2.NewStaticCredentialsProvider(c.accessKey, c.secretKey, ""), HTTPClient: &http.Client{Transport: c.rec, Timeout: 60 * time.Second}})
	v2, err := cachev2.New(func(x *cachev2.Cache) { x.Client = client; x.CacheItemTTL = int64(cacheTTL) })
	c.ok("secretcache v2 New", err)
	cacheChecks(c, sm, "v2.0.2 (aws-sdk-go-v2)", "cache-v2", v2, func() secretCache {
		n, _ := cachev2.New(func(x *cachev2.Cache) { x.Client = client; x.CacheItemTTL = int64(cacheTTL) })
		return n
	})
}

func cacheChecks(c *checker, sm *secretsmanager.SecretsManager, ver, prefix string, cache secretCache, fresh func() secretCache) {
	str, bin := prefix+"/str", prefix+"/bin"
	binVal := []byte{9, 8, 7, 0, 0xff}
	chk(sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String(str), SecretString: aws.String("s1")}))(c, "CreateSecret")
	chk(sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String(str), SecretString: aws.String("s2")}))(c, "PutSecretValue")
	chk(sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String(bin), SecretBinary: binVal}))(c, "CreateSecret")
	calls := func() int {
		return c.rec.count("secretsmanager", "DescribeSecret") + c.rec.count("secretsmanager", "GetSecretValue")
	}
	s := chk(cache.GetSecretString(str))(c, "cache GetSecretString")
	p := chk(cache.GetSecretStringWithStage(str, "AWSPREVIOUS"))(c, "cache GetSecretStringWithStage AWSPREVIOUS")
	b := chk(cache.GetSecretBinary(bin))(c, "cache GetSecretBinary")
	c.want(s == "s2" && p == "s1" && bytes.Equal(b, binVal), "cache %s: GetSecretString %q, AWSPREVIOUS %q, binary %v", ver, s, p, b)
	_, err := cache.GetSecretString(bin)
	c.want(err != nil && strings.Contains(err.Error(), "does not contain SecretString"), "cache GetSecretString of a binary secret: %v", err)
	n0 := calls()
	for i := 0; i < 5; i++ {
		s = chk(cache.GetSecretString(str))(c, "cache GetSecretString")
	}
	c.want(calls() == n0, "cache %s: 5 more GetSecretString made %d calls", ver, calls()-n0)
	c.pass("cache %s: GetSecretString (AWSCURRENT s2), GetSecretStringWithStage AWSPREVIOUS (s1), GetSecretBinary (the bytes), GetSecretString of a binary secret: %q; 5 more reads make no call", ver, err.Error())

	chk(sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String(str), SecretString: aws.String("s3")}))(c, "PutSecretValue")
	s = chk(cache.GetSecretString(str))(c, "cache GetSecretString")
	c.want(s == "s2", "cache %s: right after PutSecretValue the cache gave %q, want the cached s2 (TTL %v)", ver, s, cacheTTL)
	start := time.Now()
	for time.Since(start) < cacheTTL+time.Second && s != "s3" {
		time.Sleep(100 * time.Millisecond)
		s = chk(cache.GetSecretString(str))(c, "cache GetSecretString")
	}
	c.want(s == "s3", "cache %s: %v after PutSecretValue still %q", ver, time.Since(start), s)
	c.pass("cache %s: after PutSecretValue still s2, then s3 after %.1fs (CacheItemTTL %v: refresh at a random point in [TTL/2, TTL))", ver, time.Since(start).Seconds(), cacheTTL)

	chk(sm.DeleteSecret(&secretsmanager.DeleteSecretInput{SecretId: aws.String(str), RecoveryWindowInDays: aws.Int64(7)}))(c, "DeleteSecret")
	chk(sm.DeleteSecret(&secretsmanager.DeleteSecretInput{SecretId: aws.String(bin), ForceDeleteWithoutRecovery: aws.Bool(true)}))(c, "DeleteSecret force")
	nd := c.rec.count("secretsmanager", "DescribeSecret")
	time.Sleep(cacheTTL + 100*time.Millisecond)
	s, errS := cache.GetSecretString(str)
	b, errB := cache.GetSecretBinary(bin)
	c.want(c.rec.count("secretsmanager", "DescribeSecret") > nd, "cache %s: no DescribeSecret after the TTL", ver)
	c.pass("cache %s: after DeleteSecret (7-day window) and a TTL, the cache refreshes (DescribeSecret succeeds, DeletedDate set) and still serves the cached version: %q, err %v; after a ForceDeleteWithoutRecovery it gets ResourceNotFoundException from DescribeSecret and serves its cached bytes: %v, err %v",
		ver, s, errS, b, errB)
	nc := fresh()
	_, errS = nc.GetSecretString(str)
	_, errB = nc.GetSecretBinary(bin)
	c.want(errS != nil && errB != nil, "a fresh cache read deleted secrets: %v %v", errS, errB)
	c.want(strings.Contains(errS.Error(), "InvalidRequestException") && strings.Contains(errB.Error(), "ResourceNotFoundException"), "fresh cache errors: %v / %v", errS, errB)
	c.pass("cache %s: a fresh cache: secret scheduled for deletion: %s; force-deleted secret: %s", ver, oneLine(errS.Error()), oneLine(errB.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
