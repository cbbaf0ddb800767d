package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// meter is a process (or processes) whose CPU and RSS a row reports.
type meter interface {
	cpu() time.Duration
	rss() string
}

// cluster is the keyfort servers of a run: one, or -nodes of them on one
// PostgreSQL store.
type cluster struct {
	nodes   []*server
	keyFile string // the root key file the nodes share ("" with one node)
}

// startCluster starts n keyfort servers on store (n > 1 needs a shared
// store); with several, they share a root key written to a file of their
// own, removed by stop.
func startCluster(binary, store string, n int) (*cluster, error) {
	c := &cluster{}
	if n > 1 {
		dir, err := os.MkdirTemp("", "keyfort-loadgen-key-")
		if err != nil {
			return nil, err
		}
		c.keyFile = filepath.Join(dir, "root.key")
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, err
		}
		if err := os.WriteFile(c.keyFile, []byte(base64.StdEncoding.EncodeToString(k[:])+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("root key: %w", err)
		}
	}
	for i := range n {
		s, err := startServer(binary, store, c.keyFile)
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		c.nodes = append(c.nodes, s)
	}
	return c, nil
}

// endpoints returns the nodes' URLs.
func (c *cluster) endpoints() []string {
	var out []string
	for _, s := range c.nodes {
		out = append(out, "http://"+s.addr)
	}
	return out
}

// cpu returns the CPU time of all the nodes.
func (c *cluster) cpu() time.Duration {
	var t time.Duration
	for _, s := range c.nodes {
		t += s.cpu()
	}
	return t
}

// rss returns each node's RSS, joined with " + ".
func (c *cluster) rss() string {
	var parts []string
	for _, s := range c.nodes {
		parts = append(parts, s.rss())
	}
	return strings.Join(parts, " + ")
}

func (c *cluster) stop() {
	for _, s := range c.nodes {
		s.stop()
	}
	if c.keyFile != "" {
		_ = os.RemoveAll(filepath.Dir(c.keyFile))
	}
}

// roundRobin hands out the endpoints in turn, one per request. The SDK
// resolves the endpoint before it signs, so each request is signed for the
// node it goes to.
type roundRobin struct {
	urls []url.URL
	next atomic.Uint64
}

func newRoundRobin(endpoints []string) *roundRobin {
	r := &roundRobin{}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			panic(fmt.Sprintf("endpoint %q: %v", e, err)) // loadgen builds them from addresses it chose
		}
		r.urls = append(r.urls, *u)
	}
	return r
}

func (r *roundRobin) pick() (smithyendpoints.Endpoint, error) {
	if len(r.urls) == 0 {
		return smithyendpoints.Endpoint{}, errors.New("no endpoints")
	}
	return smithyendpoints.Endpoint{URI: r.urls[(r.next.Add(1)-1)%uint64(len(r.urls))]}, nil
}

// kmsNodes and smNodes resolve every request of a client to the next node.
type (
	kmsNodes struct{ *roundRobin }
	smNodes  struct{ *roundRobin }
)

func (r kmsNodes) ResolveEndpoint(context.Context, kms.EndpointParameters) (smithyendpoints.Endpoint, error) {
	return r.pick()
}

func (r smNodes) ResolveEndpoint(context.Context, secretsmanager.EndpointParameters) (smithyendpoints.Endpoint, error) {
	return r.pick()
}
