package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// smHot is how many of the seeded secrets GetSecretValue reads. Each is read
// once while seeding, so the run measures the steady state: Secrets Manager
// records the access date at most once a day per version, and the first read
// of a version that day is also a write.
const smHot = 1000

// newSMClient returns a Secrets Manager client for conc concurrent callers
// that sends its requests to the endpoints in turn.
func newSMClient(conc int, endpoints ...string) *secretsmanager.Client {
	tr := &http.Transport{MaxIdleConns: conc * 2 * len(endpoints), MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoints[0]),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOADGEN", "secret", ""),
		Retryer:      closedConnRetryer(),
		HTTPClient:   &http.Client{Transport: tr},
	}, func(o *secretsmanager.Options) {
		if len(endpoints) > 1 {
			o.EndpointResolverV2 = smNodes{newRoundRobin(endpoints)}
		}
	})
}

// smSecretName names seeded secret i.
func smSecretName(i int) string { return fmt.Sprintf("loadgen/secret-%05d", i) }

// seedSecrets creates n secrets (a description and a 64-byte string value
// each, no tags) with conc workers, and reads the first smHot of them once.
func seedSecrets(ctx context.Context, c *secretsmanager.Client, n, conc int) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := 0
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
					Name:         aws.String(smSecretName(i)),
					Description:  aws.String("loadgen secret " + strconv.Itoa(i)),
					SecretString: aws.String(fmt.Sprintf("%064d", i)),
				})
				if err == nil && i < smHot {
					_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(smSecretName(i))})
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("seeding secrets: %w", firstErr)
	}
	return nil
}

// smOps returns the Secrets Manager operations over n seeded secrets.
// ListSecrets walks the whole listing, 100 secrets a page, each client
// continuing from its last NextToken and starting over at the end.
func smOps(c *secretsmanager.Client, n, conc int) map[string]func(ctx context.Context, w, i int) error {
	n = max(n, 1)
	run := time.Now().UnixNano()
	return map[string]func(ctx context.Context, w, i int) error{
		"GetSecretValue": func(ctx context.Context, w, i int) error {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(smSecretName((w*7919 + i) % min(n, smHot)))})
			return err
		},
		"DescribeSecret": func(ctx context.Context, w, i int) error {
			_, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(smSecretName((w*7919 + i) % n))})
			return err
		},
		"ListSecrets": listWalk(c, conc),
		"PutSecretValue": func(ctx context.Context, w, i int) error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
				SecretId:     aws.String(smSecretName((w*7919 + i) % n)),
				SecretString: aws.String(fmt.Sprintf("put-%d-%d-%032d", w, i, run)),
			})
			return err
		},
		"CreateSecret": func(ctx context.Context, w, i int) error {
			_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name:         aws.String(fmt.Sprintf("loadgen/new-%d-%d-%d", run, w, i)),
				SecretString: aws.String(fmt.Sprintf("%064d", i)),
			})
			return err
		},
	}
}

// listWalk returns the ListSecrets operation: each of the conc clients
// walks the listing, 100 secrets a page, continuing from its last NextToken
// and starting over at the end.
func listWalk(c *secretsmanager.Client, conc int) func(ctx context.Context, w, i int) error {
	tokens := make([]*string, conc) // per client; only client w touches tokens[w]
	return func(ctx context.Context, w, i int) error {
		out, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100), NextToken: tokens[w]})
		if err != nil {
			tokens[w] = nil
			return err
		}
		tokens[w] = out.NextToken
		return nil
	}
}

// capturedPage is a ListSecrets response body as the server sent it.
type capturedPage struct {
	body    []byte
	entries int
}

// firstListPage returns the server's first ListSecrets page of 100 entries
// (the call listWalk makes first), as it came over the wire: the canned
// answer of the FloorListSecrets row.
func firstListPage(ctx context.Context, endpoint string) (*capturedPage, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rec := &bodyRecorder{next: tr}
	c := secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOADGEN", "secret", ""),
		Retryer:      closedConnRetryer(),
		HTTPClient:   &http.Client{Transport: rec},
	})
	out, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		return nil, fmt.Errorf("first ListSecrets page: %w", err)
	}
	return &capturedPage{body: rec.body, entries: len(out.SecretList)}, nil
}

// bodyRecorder keeps the body of the last response it carried.
type bodyRecorder struct {
	next http.RoundTripper
	body []byte
}

func (r *bodyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.body = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}
