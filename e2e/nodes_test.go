package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/clock"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestThreeNodesOnePostgres runs three keyfort binaries on one PostgreSQL
// schema with one root key and drives them at once through the SDK, each
// worker writing on one node and reading on another straight after the
// write was answered. Node 1 is killed with SIGKILL mid-stream and
// restarted on its data directory and address; then every node's clock is
// moved 91 days at once, so that deletions and rotations come due on three
// nodes together. It fails, naming the node, the call, what was read and
// what was acknowledged, on:
//
//   - a stale read: a node answering from state older than a write another
//     node had acknowledged before the read was sent (a key, a ciphertext's
//     key, a disabled or enabled key, a tag, a secret, its value, a staging
//     label, a ListSecrets page);
//   - a lost write: an acknowledged key, ciphertext, secret version, tag or
//     label move missing at the end, or a concurrent tag or label write of
//     another worker undoing it;
//   - on the secrets that two workers put values into through different
//     nodes, an AWSCURRENT or AWSPREVIOUS no order of the acknowledged puts
//     allows (a put acknowledged before another began is older than it);
//   - a job not run (a key or secret still there past its date, no
//     rotation) or run twice (two rotations in one period, a failed job run);
//   - any error from a live node, and any error from node 1 other than a
//     connection failure while it was down.
//
// Writes without an answer (in flight at the kill) may or may not have
// happened; the checks allow both.
func TestThreeNodesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dsn := pgtest.DSN(t)
	began := time.Now()
	c := newCluster(t, dsn, 1)
	s := newStream(t, c)
	t.Logf("3 nodes up and set up in %s", time.Since(began).Round(time.Millisecond))

	s.run()
	s.report()
	if t.Failed() {
		return
	}
	checked := time.Now()
	s.checkData()
	s.checkPutRaces()
	t.Logf("checked the acknowledged writes in %s", time.Since(checked).Round(time.Millisecond))
	s.report()

	s.checkJobsBefore()
	moved := time.Now()
	c.advanceAll(t, "91d")
	t.Logf("moved the 3 clocks 91 days ahead in %s", time.Since(moved).Round(time.Millisecond))
	s.checkJobsAfter()
	c.stopAll(t)
	c.checkLogs()
	s.report()
	t.Logf("took %s", time.Since(began).Round(time.Millisecond))
}

// node is one keyfort server of the cluster: its address and data directory
// stay the same across a restart.
type node struct {
	i     int
	addr  string
	dir   string
	kms   *kms.Client
	sm    *secretsmanager.Client
	procs []*proc // every process that served as this node, the current one last
}

// cluster is three keyfort processes on one PostgreSQL schema, and what
// went wrong with them.
type cluster struct {
	t      *testing.T
	bin    string
	args   []string // serve's flags the nodes share: the store, the root key, the log level
	nodes  []*node
	victim int // the node killed mid-stream

	mu        sync.Mutex
	downFrom  time.Time // the victim was killed at (zero until then)
	upAt      time.Time // and answered /health again at
	problems  []string  // the first 200 problems
	nProblems int
	unreached int // calls to the victim that failed while it was down
}

func newCluster(t *testing.T, dsn string, victim int) *cluster {
	t.Helper()
	storeDSN := pgtest.CreateSchema(t, dsn, "e2e_nodes_")
	keyFile := filepath.Join(t.TempDir(), "root.key")
	k, err := envelope.GenerateRootKey(rand.Reader)
	mustNoErr(t, err, "GenerateRootKey")
	mustNoErr(t, envelope.WriteRootKeyFile(keyFile, k), "WriteRootKeyFile")
	c := &cluster{t: t, bin: keyfortBinary(t), victim: victim,
		args: []string{"--store", storeDSN, "--root-key-file", keyFile, "--log-level", "info"}}
	for i := range 3 {
		n := &node{i: i, addr: freePort(t), dir: t.TempDir()}
		n.kms = kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + n.addr),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), Retryer: keyfortest.ClosedConnRetryer()})
		n.sm = secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + n.addr),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), Retryer: keyfortest.ClosedConnRetryer()})
		c.nodes = append(c.nodes, n)
	}
	// The three start at once: they migrate the new schema together.
	procs := make([]*proc, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = launchBinary(c.bin, n.addr, n.dir, c.args, nil)
		}()
	}
	wg.Wait()
	for i, n := range c.nodes {
		if procs[i] != nil {
			n.procs = append(n.procs, procs[i])
			t.Cleanup(procs[i].cleanup)
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node%d: %v", i, err)
		}
	}
	return c
}

// kill kills the victim with SIGKILL and restarts it on the same address
// and data directory after pause.
func (c *cluster) killAndRestart(pause time.Duration) error {
	n := c.nodes[c.victim]
	c.mu.Lock()
	c.downFrom = time.Now()
	c.mu.Unlock()
	n.procs[len(n.procs)-1].kill9(c.t)
	time.Sleep(pause)
	p, err := launchBinary(c.bin, n.addr, n.dir, c.args, nil)
	if err != nil {
		return fmt.Errorf("restart node%d: %w", c.victim, err)
	}
	n.procs = append(n.procs, p)
	c.t.Cleanup(p.cleanup)
	c.mu.Lock()
	c.upAt = time.Now()
	c.mu.Unlock()
	return nil
}

// problem records one failure of the cluster; report prints them.
func (c *cluster) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nProblems++
	if len(c.problems) < 200 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// ok reports whether a call to node n succeeded. A failure is a problem
// unless it is a connection failure of the victim while it was down (or
// within 2 s of its restart, while the clients drop their dead
// connections).
func (c *cluster) ok(n int, op string, err error) bool {
	if err == nil {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) && n == c.victim {
		now := time.Now()
		c.mu.Lock()
		down := !c.downFrom.IsZero() && !now.Before(c.downFrom) && (c.upAt.IsZero() || now.Before(c.upAt.Add(2*time.Second)))
		if down {
			c.unreached++
		}
		c.mu.Unlock()
		if down {
			return false
		}
	}
	c.problem("node%d %s: unexpected error: %v", n, op, err)
	return false
}

// errCode returns the AWS error code of err, or "".
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// advanceAll moves every node's clock by d at once.
func (c *cluster) advanceAll(t *testing.T, d string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(clock.AdvanceRequest{Duration: d})
			resp, err := http.Post("http://"+n.addr+clock.PathAdvance, "application/json", bytes.NewReader(body))
			if err != nil {
				c.problem("node%d clock advance %s: %v", n.i, d, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var st clock.State
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil || st.Offset != d {
				c.problem("node%d clock advance %s = HTTP %d %s, want 200 and offset %s (a failed job run fails the advance)", n.i, d, resp.StatusCode, b, d)
			}
		}()
	}
	wg.Wait()
}

// stopAll stops every node with SIGTERM, so that their logs are complete.
func (c *cluster) stopAll(t *testing.T) {
	for _, n := range c.nodes {
		n.procs[len(n.procs)-1].stop(t)
	}
}

// checkLogs fails on error lines in any node's logs (a failed job run, an
// internal error), the killed process's included.
func (c *cluster) checkLogs() {
	for _, n := range c.nodes {
		for j, p := range n.procs {
			for _, line := range strings.Split(p.logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "background job failed") {
					c.problem("node%d (process %d) logged: %.500s", n.i, j+1, line)
				}
			}
		}
	}
}

// cell is what a single writer has written to one place in turn: the value
// of its last acknowledged write, and the values it sent after that without
// an answer (each may or may not have been applied, in order).
type cell struct {
	acked  string
	hasAck bool
	unsure []string
}

func (c *cell) ack(v string)   { c.acked, c.hasAck, c.unsure = v, true, nil }
func (c *cell) maybe(v string) { c.unsure = append(c.unsure, v) }

// allows reports whether v may be read at the end.
func (c *cell) allows(v string) bool {
	return (c.hasAck && v == c.acked) || slices.Contains(c.unsure, v)
}

func (c *cell) String() string {
	s := "nothing acknowledged"
	if c.hasAck {
		s = fmt.Sprintf("last acknowledged %q", c.acked)
	}
	if len(c.unsure) > 0 {
		s += fmt.Sprintf(" (then %d writes without an answer: %q)", len(c.unsure), c.unsure)
	}
	return s
}

// sealed is an acknowledged Encrypt.
type sealed struct {
	key  string
	blob []byte
	pt   []byte
}

// version is an acknowledged secret version.
type version struct{ secret, id, value string }

// xState is what one cross-node worker had acknowledged.
type xState struct {
	keys     []string
	cts      []sealed
	unsure   map[string]bool  // keys whose DisableKey or EnableKey got no answer
	secrets  map[string]*cell // secret name -> its AWSCURRENT value
	versions []version
}

// put is one PutSecretValue into a shared secret: sent at start and,
// once acknowledged, answered at end. The version id is the request token.
type put struct {
	id, value  string
	start, end time.Time
	acked      bool
}

// sharedSecret is a secret that the putters write at once through
// different nodes.
type sharedSecret struct {
	name string
	mu   sync.Mutex
	puts map[string]*put // by version id; the CreateSecret version too
}

// olderThan reports whether version v was certainly replaced as AWSCURRENT
// once x was acknowledged: its put was acknowledged before x was sent.
func (s *sharedSecret) olderThan(v string, x *put) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.puts[v]
	return p != nil && p.acked && p.end.Before(x.start)
}

// jobRes is a key or secret given a job: acked when the call that
// scheduled it (ScheduleKeyDeletion, EnableKeyRotation, DeleteSecret) was
// acknowledged; otherwise it may or may not be scheduled.
type jobRes struct {
	id    string
	acked bool
	by    int // the node that scheduled it
}

const (
	xWorkers     = 3
	tagWorkers   = 3
	labelWorkers = 2
	putWorkers   = 2
	sharedPuts   = 90 // puts per shared secret, under the 100 versions a secret keeps in a day
	nShared      = 8
	labelVers    = 4 // versions of the label secret
)

// stream is the workload and everything it was acknowledged.
type stream struct {
	t    *testing.T
	c    *cluster
	ctx  context.Context
	stop atomic.Bool

	progress []atomic.Int64 // acknowledged writes per worker
	acks     []atomic.Int64 // acknowledged writes per node

	x []xState

	tagKey    string // the KMS key the taggers all tag
	tagSecret string // the secret the taggers all tag
	kTags     [tagWorkers]cell
	sTags     [tagWorkers]cell

	labelSecret string
	labelVers   []string // its versions, each kept by a label of its own
	labels      [labelWorkers]cell

	shared []*sharedSecret
	nPuts  atomic.Int64

	delKeys, rotKeys, delSecrets []jobRes
}

func newStream(t *testing.T, c *cluster) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	s := &stream{t: t, c: c, ctx: ctx,
		progress: make([]atomic.Int64, xWorkers+tagWorkers+labelWorkers+putWorkers+1),
		acks:     make([]atomic.Int64, len(c.nodes)),
		x:        make([]xState, xWorkers)}
	for w := range s.x {
		s.x[w] = xState{unsure: map[string]bool{}, secrets: map[string]*cell{}}
	}
	n0 := c.nodes[0]
	k, err := n0.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("tagged by every tagger")})
	mustNoErr(t, err, "CreateKey")
	s.tagKey = aws.ToString(k.KeyMetadata.KeyId)

	// The first secrets are made on the three nodes at once: each needs
	// the AWS managed key aws/secretsmanager, which none has made yet.
	names := []string{"nodes/tagged", "nodes/labels"}
	for i := range nShared {
		names = append(names, fmt.Sprintf("nodes/shared-%d", i))
	}
	created := make([]*secretsmanager.CreateSecretOutput, len(names))
	errs := make([]error, len(names))
	starts := make([]time.Time, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			starts[i] = time.Now()
			created[i], errs[i] = c.nodes[i%3].sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("initial")})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		mustNoErr(t, err, fmt.Sprintf("node%d CreateSecret %s (the first secrets, on 3 nodes at once)", i%3, names[i]))
	}
	s.tagSecret = names[0]
	s.labelSecret = names[1]
	s.labelVers = []string{aws.ToString(created[1].VersionId)}
	for i := range nShared {
		sh := &sharedSecret{name: names[2+i], puts: map[string]*put{}}
		id := aws.ToString(created[2+i].VersionId)
		sh.puts[id] = &put{id: id, value: "initial", start: starts[2+i], end: time.Now(), acked: true}
		s.shared = append(s.shared, sh)
	}
	for v := 1; v < labelVers; v++ {
		out, err := c.nodes[v%3].sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(s.labelSecret),
			SecretString: aws.String(fmt.Sprint("version ", v)), VersionStages: []string{fmt.Sprint("keep", v)}})
		mustNoErr(t, err, "PutSecretValue")
		s.labelVers = append(s.labelVers, aws.ToString(out.VersionId))
	}
	for w := range labelWorkers {
		_, err := c.nodes[w%3].sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(s.labelSecret),
			VersionStage: aws.String(fmt.Sprint("L", w)), MoveToVersionId: aws.String(s.labelVers[0])})
		mustNoErr(t, err, "UpdateSecretVersionStage")
		s.labels[w].ack(s.labelVers[0])
	}
	return s
}

// acked counts an acknowledged write of worker w on node n.
func (s *stream) acked(w, n int) {
	s.progress[w].Add(1)
	s.acks[n].Add(1)
}

// run runs the workers, kills and restarts the victim once they all have
// acknowledged writes, and stops them once the restarted victim has
// acknowledged writes too.
func (s *stream) run() {
	var wg sync.WaitGroup
	w := 0
	start := func(f func(id int)) {
		id := w
		w++
		wg.Add(1)
		go func() { defer wg.Done(); f(id) }()
	}
	for i := range xWorkers {
		start(func(id int) { s.xnode(id, i) })
	}
	for i := range tagWorkers {
		start(func(id int) { s.tagger(id, i) })
	}
	for i := range labelWorkers {
		start(func(id int) { s.labeler(id, i) })
	}
	for i := range putWorkers {
		start(func(id int) { s.putter(id, i) })
	}
	start(s.jobs)

	began := time.Now()
	waitFor := func(d time.Duration, done func() bool) {
		for deadline := time.Now().Add(d); time.Now().Before(deadline) && !done(); time.Sleep(20 * time.Millisecond) {
		}
	}
	waitFor(20*time.Second, func() bool {
		if time.Since(began) < 2*time.Second {
			return false
		}
		for i := range s.progress {
			if s.progress[i].Load() < 5 {
				return false
			}
		}
		return true
	})
	before := s.acks[s.c.victim].Load()
	if err := s.c.killAndRestart(300 * time.Millisecond); err != nil {
		s.stop.Store(true)
		wg.Wait()
		s.t.Fatal(err)
	}
	restarted := time.Now()
	afterKill := s.acks[s.c.victim].Load()
	waitFor(20*time.Second, func() bool {
		return time.Since(restarted) > 2500*time.Millisecond && s.acks[s.c.victim].Load()-afterKill >= 20
	})
	s.stop.Store(true)
	wg.Wait()
	var total int64
	for i := range s.acks {
		total += s.acks[i].Load()
	}
	s.t.Logf("stream: %s, %d writes acknowledged; node%d: %d before the kill, %d after its restart, %d calls failed while it was down",
		time.Since(began).Round(time.Millisecond), total, s.c.victim, before, s.acks[s.c.victim].Load()-afterKill, s.c.unreached)
	for i := range s.progress {
		if n := s.progress[i].Load(); n < 5 {
			s.c.problem("worker %d had only %d writes acknowledged: too few for the test to mean anything", i, n)
		}
	}
	if before < 20 || s.acks[s.c.victim].Load()-afterKill < 20 {
		s.c.problem("too few writes acknowledged by node%d around its kill (%d before, %d after) for the test to mean anything", s.c.victim, before, s.acks[s.c.victim].Load()-afterKill)
	}
}

// report fails the test with every problem recorded so far.
func (s *stream) report() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, p := range s.c.problems {
		s.t.Error(p)
	}
	if s.c.nProblems > len(s.c.problems) {
		s.t.Errorf("... and %d more problems", s.c.nProblems-len(s.c.problems))
	}
	s.c.problems, s.c.nProblems = nil, 0
}

// xnode is cross-node worker x (progress slot w): it writes on one node and
// reads straight after on the next, in turn: a new key (DescribeKey,
// Encrypt there, Decrypt on the next), a tag on it, DisableKey and EnableKey
// (Encrypt on the next node must follow), a new secret (GetSecretValue,
// ListSecrets), and a new value of it.
func (s *stream) xnode(w, x int) {
	st := &s.x[x]
	ctx := s.ctx
	var key, secret string // the current key and secret; "" after a write without an answer
	puts := 0
	for i := 0; !s.stop.Load() && i < 5000; i++ {
		a, b := (x+i)%3, (x+i+1)%3
		A, B := s.c.nodes[a], s.c.nodes[b]
		switch i % 5 {
		case 0:
			out, err := A.kms.CreateKey(ctx, &kms.CreateKeyInput{})
			if key = ""; !s.c.ok(a, "CreateKey", err) {
				continue
			}
			s.acked(w, a)
			key = aws.ToString(out.KeyMetadata.KeyId)
			st.keys = append(st.keys, key)
			d, err := B.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
			switch {
			case errCode(err) == "NotFoundException":
				s.c.problem("stale read: node%d DescribeKey(%s) = NotFoundException; node%d had acknowledged its CreateKey", b, key, a)
			case s.c.ok(b, "DescribeKey", err) && d.KeyMetadata.KeyState != types.KeyStateEnabled:
				s.c.problem("node%d DescribeKey(%s): state %s, want Enabled", b, key, d.KeyMetadata.KeyState)
			}
			pt := []byte(fmt.Sprintf("x%d-%d", x, i))
			enc, err := A.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: pt})
			if !s.c.ok(a, "Encrypt", err) {
				continue
			}
			st.cts = append(st.cts, sealed{key, enc.CiphertextBlob, pt})
			dec, err := B.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			switch {
			case errCode(err) != "":
				s.c.problem("stale read: node%d Decrypt of a ciphertext node%d made under new key %s: %v", b, a, key, err)
			case s.c.ok(b, "Decrypt", err) && !bytes.Equal(dec.Plaintext, pt):
				s.c.problem("node%d Decrypt = %q, want %q", b, dec.Plaintext, pt)
			}
		case 1:
			if key == "" {
				continue
			}
			v := fmt.Sprint("v", i)
			_, err := A.kms.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key), Tags: []types.Tag{tg("x", v)}})
			if !s.c.ok(a, "TagResource", err) {
				key = ""
				continue
			}
			s.acked(w, a)
			out, err := B.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(key)})
			if s.c.ok(b, "ListResourceTags", err) {
				if got := kmsTag(out.Tags, "x"); got != v {
					s.c.problem("stale read: node%d ListResourceTags(%s): x=%q; node%d had acknowledged x=%q", b, key, got, a, v)
				}
			}
		case 2:
			if key == "" {
				continue
			}
			_, err := A.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)})
			if !s.c.ok(a, "DisableKey", err) {
				st.unsure[key], key = true, ""
				continue
			}
			s.acked(w, a)
			_, err = B.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
			switch {
			case err == nil:
				s.c.problem("stale read: node%d Encrypt(%s) succeeded; node%d had acknowledged DisableKey (want DisabledException)", b, key, a)
			case errCode(err) != "DisabledException":
				s.c.ok(b, "Encrypt under a disabled key", err)
			}
			_, err = A.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(key)})
			if !s.c.ok(a, "EnableKey", err) {
				st.unsure[key], key = true, ""
				continue
			}
			s.acked(w, a)
			_, err = B.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
			if errCode(err) == "DisabledException" {
				s.c.problem("stale read: node%d Encrypt(%s) = DisabledException; node%d had acknowledged EnableKey", b, key, a)
			} else {
				s.c.ok(b, "Encrypt", err)
			}
		case 3:
			name := fmt.Sprintf("nodes/x%d/%05d", x, i) // one length: a name is no prefix of another
			value := fmt.Sprintf("x%d-%d-first", x, i)
			out, err := A.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
			if secret = ""; !s.c.ok(a, "CreateSecret", err) {
				continue
			}
			s.acked(w, a)
			secret, puts = name, 0
			st.secrets[name] = &cell{}
			st.secrets[name].ack(value)
			st.versions = append(st.versions, version{name, aws.ToString(out.VersionId), value})
			g, err := B.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
			switch {
			case errCode(err) == "ResourceNotFoundException":
				s.c.problem("stale read: node%d GetSecretValue(%s) = ResourceNotFoundException; node%d had acknowledged its CreateSecret", b, name, a)
			case s.c.ok(b, "GetSecretValue", err) && aws.ToString(g.SecretString) != value:
				s.c.problem("node%d GetSecretValue(%s) = %q, want %q", b, name, aws.ToString(g.SecretString), value)
			}
			c := (x + i + 2) % 3
			l, err := s.c.nodes[c].sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{
				Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{name}}}})
			if s.c.ok(c, "ListSecrets", err) && !slices.ContainsFunc(l.SecretList, func(e smtypes.SecretListEntry) bool { return aws.ToString(e.Name) == name }) {
				s.c.problem("stale read: node%d ListSecrets(name %s) does not list it; node%d had acknowledged its CreateSecret", c, name, a)
			}
		case 4:
			if secret == "" || puts >= sharedPuts {
				continue
			}
			value := fmt.Sprintf("x%d-%d", x, i)
			puts++
			out, err := A.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secret), SecretString: aws.String(value)})
			if !s.c.ok(a, "PutSecretValue", err) {
				st.secrets[secret].maybe(value)
				secret = ""
				continue
			}
			s.acked(w, a)
			st.secrets[secret].ack(value)
			st.versions = append(st.versions, version{secret, aws.ToString(out.VersionId), value})
			g, err := B.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
			if s.c.ok(b, "GetSecretValue", err) && aws.ToString(g.SecretString) != value {
				s.c.problem("stale read: node%d GetSecretValue(%s) = %q; node%d had acknowledged PutSecretValue %q", b, secret, aws.ToString(g.SecretString), a, value)
			}
		}
	}
}

// kmsTag returns the value of tag k, or "(absent)".
func kmsTag(tags []types.Tag, k string) string {
	for _, tg := range tags {
		if aws.ToString(tg.TagKey) == k {
			return aws.ToString(tg.TagValue)
		}
	}
	return "(absent)"
}

func smTag(tags []smtypes.Tag, k string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == k {
			return aws.ToString(tg.Value)
		}
	}
	return "(absent)"
}

// tagger is tag worker x: it sets its own tag on the shared key and the
// shared secret in turn, each time through another node, while the other
// taggers set theirs on the same records; after each acknowledged write the
// next node must read that value (no other worker writes that tag).
func (s *stream) tagger(w, x int) {
	ctx := s.ctx
	k := fmt.Sprint("t", x)
	for i := 0; !s.stop.Load() && i < 5000; i++ {
		a, b := (x+i)%3, (x+i+2)%3
		A, B := s.c.nodes[a], s.c.nodes[b]
		v := fmt.Sprint(i)
		if i%2 == 0 {
			_, err := A.kms.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(s.tagKey), Tags: []types.Tag{tg(k, v)}})
			if !s.c.ok(a, "TagResource (shared key)", err) {
				s.kTags[x].maybe(v)
				continue
			}
			s.acked(w, a)
			s.kTags[x].ack(v)
			out, err := B.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(s.tagKey)})
			if s.c.ok(b, "ListResourceTags (shared key)", err) {
				if got := kmsTag(out.Tags, k); got != v {
					s.c.problem("stale read or lost update: node%d ListResourceTags(shared key %s): %s=%s; node%d had acknowledged %s=%s", b, s.tagKey, k, got, a, k, v)
				}
			}
			continue
		}
		_, err := A.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(s.tagSecret), Tags: []smtypes.Tag{{Key: aws.String(k), Value: aws.String(v)}}})
		if !s.c.ok(a, "TagResource (shared secret)", err) {
			s.sTags[x].maybe(v)
			continue
		}
		s.acked(w, a)
		s.sTags[x].ack(v)
		out, err := B.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.tagSecret)})
		if s.c.ok(b, "DescribeSecret (shared secret)", err) {
			if got := smTag(out.Tags, k); got != v {
				s.c.problem("stale read or lost update: node%d DescribeSecret(%s): tag %s=%s; node%d had acknowledged %s=%s", b, s.tagSecret, k, got, a, k, v)
			}
		}
	}
}

// stageHolders returns the versions label is attached to.
func stageHolders(m map[string][]string, label string) []string {
	var on []string
	for v, stages := range m {
		if slices.Contains(stages, label) {
			on = append(on, v)
		}
	}
	slices.Sort(on)
	return on
}

// labeler is label worker x: it moves its own staging label from version
// to version of the label secret, each move through another node, naming
// the version the label is on by its last move (RemoveFromVersionId), while
// the other labelers move theirs on the same secret. After each
// acknowledged move the next node must show the label on that version only.
func (s *stream) labeler(w, x int) {
	ctx := s.ctx
	label := fmt.Sprint("L", x)
	holder := s.labelVers[0]
	unsure := false // the last move got no answer: holder was read back
	for i := 0; !s.stop.Load() && i < 5000; i++ {
		a, b := (x+i)%3, (x+i+1)%3
		A, B := s.c.nodes[a], s.c.nodes[b]
		target := s.labelVers[(slices.Index(s.labelVers, holder)+1)%len(s.labelVers)]
		_, err := A.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(s.labelSecret),
			VersionStage: aws.String(label), MoveToVersionId: aws.String(target), RemoveFromVersionId: aws.String(holder)})
		if err != nil {
			if errCode(err) == "InvalidParameterException" && !unsure {
				s.c.problem("stale read or lost update: node%d UpdateSecretVersionStage(%s from %s to %s): %v; the last acknowledged move had put it on %s",
					a, label, holder, target, err, holder)
			} else if errCode(err) != "InvalidParameterException" {
				s.c.ok(a, "UpdateSecretVersionStage", err)
			}
			s.labels[x].maybe(target)
			holder, unsure = s.labelNow(label, b), true
			continue
		}
		s.acked(w, a)
		s.labels[x].ack(target)
		holder, unsure = target, false
		out, err := B.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.labelSecret)})
		if s.c.ok(b, "DescribeSecret (label secret)", err) {
			if on := stageHolders(out.VersionIdsToStages, label); len(on) != 1 || on[0] != target {
				s.c.problem("stale read or lost update: node%d DescribeSecret(%s): label %s on versions %v; node%d had acknowledged its move to %s",
					b, s.labelSecret, label, on, a, target)
			}
		}
	}
}

// labelNow reads where label is, from the first node from n on that
// answers; "" when it is on no version or several (a problem).
func (s *stream) labelNow(label string, n int) string {
	for j := range 3 {
		m := (n + j) % 3
		out, err := s.c.nodes[m].sm.DescribeSecret(s.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.labelSecret)})
		if !s.c.ok(m, "DescribeSecret (label secret)", err) {
			continue
		}
		on := stageHolders(out.VersionIdsToStages, label)
		if len(on) != 1 {
			s.c.problem("node%d DescribeSecret(%s): label %s on versions %v, want exactly one", m, s.labelSecret, label, on)
			return s.labelVers[0]
		}
		return on[0]
	}
	return s.labelVers[0]
}

// putter is put worker x: it puts new values into the shared secrets,
// which the other putter writes at once, always through node x (putter 1
// through the victim) and reads on the next node straight after: AWSCURRENT
// there must not be a version whose put was acknowledged before this one
// was sent.
func (s *stream) putter(w, x int) {
	ctx := s.ctx
	a, b := x, (x+1)%3
	A, B := s.c.nodes[a], s.c.nodes[b]
	for !s.stop.Load() {
		n := int(s.nPuts.Add(1) - 1)
		if n >= nShared*sharedPuts {
			return
		}
		sh := s.shared[n/sharedPuts]
		p := &put{id: newToken(), value: fmt.Sprintf("p%d-%d", x, n), start: time.Now()}
		sh.mu.Lock()
		sh.puts[p.id] = p
		sh.mu.Unlock()
		_, err := A.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(sh.name),
			SecretString: aws.String(p.value), ClientRequestToken: aws.String(p.id)})
		end := time.Now()
		if !s.c.ok(a, "PutSecretValue (shared secret)", err) {
			continue
		}
		s.acked(w, a)
		sh.mu.Lock()
		p.end, p.acked = end, true
		sh.mu.Unlock()
		g, err := B.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(sh.name)})
		if !s.c.ok(b, "GetSecretValue (shared secret)", err) {
			continue
		}
		got := aws.ToString(g.VersionId)
		sh.mu.Lock()
		q := sh.puts[got]
		sh.mu.Unlock()
		switch {
		case q == nil:
			s.c.problem("node%d GetSecretValue(%s) = version %s, which no put made", b, sh.name, got)
		case aws.ToString(g.SecretString) != q.value:
			s.c.problem("node%d GetSecretValue(%s) version %s = %q, want %q", b, sh.name, got, aws.ToString(g.SecretString), q.value)
		case sh.olderThan(got, p):
			s.c.problem("stale read: node%d GetSecretValue(%s) = %q (version %s, acknowledged %s before) after node%d acknowledged PutSecretValue %q, sent after that",
				b, sh.name, q.value, got, p.start.Sub(q.end).Round(time.Microsecond), a, p.value)
		}
	}
}

// newToken returns a random ClientRequestToken (a version id).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// jobs is the worker that gives the jobs their work, each step of it on
// another node: keys scheduled for deletion in 7 days, keys with automatic
// rotation every 90 days and secrets deleted with a 7-day recovery window.
// Each scheduling call must be seen by the next node straight after.
func (s *stream) jobs(w int) {
	ctx := s.ctx
	for i := 0; !s.stop.Load() && i < 60; i++ {
		a, b, c := i%3, (i+1)%3, (i+2)%3
		A, B, C := s.c.nodes[a], s.c.nodes[b], s.c.nodes[c]
		if i%3 == 2 {
			name := fmt.Sprintf("nodes/deleted-%d", i)
			_, err := A.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v")})
			if !s.c.ok(a, "CreateSecret", err) {
				continue
			}
			s.acked(w, a)
			_, err = B.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7)})
			r := jobRes{id: name, acked: s.c.ok(b, "DeleteSecret", err), by: b}
			s.delSecrets = append(s.delSecrets, r)
			if !r.acked {
				continue
			}
			s.acked(w, b)
			d, err := C.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
			if s.c.ok(c, "DescribeSecret", err) && d.DeletedDate == nil {
				s.c.problem("stale read: node%d DescribeSecret(%s) has no DeletedDate; node%d had acknowledged DeleteSecret", c, name, b)
			}
			continue
		}
		out, err := A.kms.CreateKey(ctx, &kms.CreateKeyInput{})
		if !s.c.ok(a, "CreateKey", err) {
			continue
		}
		s.acked(w, a)
		key := aws.ToString(out.KeyMetadata.KeyId)
		if i%3 == 0 {
			_, err = B.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)})
			r := jobRes{id: key, acked: s.c.ok(b, "ScheduleKeyDeletion", err), by: b}
			s.delKeys = append(s.delKeys, r)
			if !r.acked {
				continue
			}
			s.acked(w, b)
			d, err := C.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
			if s.c.ok(c, "DescribeKey", err) && d.KeyMetadata.KeyState != types.KeyStatePendingDeletion {
				s.c.problem("stale read: node%d DescribeKey(%s): %s; node%d had acknowledged ScheduleKeyDeletion", c, key, d.KeyMetadata.KeyState, b)
			}
			continue
		}
		_, err = B.kms.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(key), RotationPeriodInDays: aws.Int32(90)})
		r := jobRes{id: key, acked: s.c.ok(b, "EnableKeyRotation", err), by: b}
		s.rotKeys = append(s.rotKeys, r)
		if !r.acked {
			continue
		}
		s.acked(w, b)
		st, err := C.kms.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(key)})
		if s.c.ok(c, "GetKeyRotationStatus", err) && !st.KeyRotationEnabled {
			s.c.problem("stale read: node%d GetKeyRotationStatus(%s) = disabled; node%d had acknowledged EnableKeyRotation", c, key, b)
		}
	}
}

// checkData checks, spreading the reads over the nodes, that every
// acknowledged write of the stream is there: keys, ciphertexts, secret
// versions and current values, the taggers' tags and the labelers' labels.
func (s *stream) checkData() {
	ctx := s.ctx
	i := 0
	next := func() *node { i++; return s.c.nodes[i%3] }
	var keys, cts, versions int
	for x := range s.x {
		st := &s.x[x]
		for _, k := range st.keys {
			n := next()
			if _, err := n.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)}); err != nil {
				s.c.problem("lost write: node%d DescribeKey(%s), a key whose CreateKey was acknowledged: %v", n.i, k, err)
			}
			keys++
		}
		for k := range st.unsure { // a DisableKey or EnableKey without an answer may have left it disabled
			if _, err := next().kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(k)}); err != nil {
				s.c.problem("EnableKey(%s): %v", k, err)
			}
		}
		for _, e := range st.cts {
			n := next()
			out, err := n.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: e.blob})
			if err != nil || !bytes.Equal(out.Plaintext, e.pt) {
				s.c.problem("lost write: node%d cannot decrypt an acknowledged ciphertext of %q under %s: %v", n.i, e.pt, e.key, err)
			}
			cts++
		}
		for _, v := range st.versions {
			n := next()
			out, err := n.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(v.secret), VersionId: aws.String(v.id)})
			if err != nil || aws.ToString(out.SecretString) != v.value {
				s.c.problem("lost write: node%d GetSecretValue(%s, version %s), acknowledged with %q: %v", n.i, v.secret, v.id, v.value, err)
			}
			versions++
		}
		for name, cl := range st.secrets {
			n := next()
			out, err := n.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
			if err != nil {
				s.c.problem("lost write: node%d GetSecretValue(%s): %v", n.i, name, err)
			} else if got := aws.ToString(out.SecretString); !cl.allows(got) {
				s.c.problem("lost update: node%d GetSecretValue(%s) = %q; %s", n.i, name, got, cl)
			}
		}
	}
	for _, n := range s.c.nodes {
		out, err := n.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(s.tagKey)})
		if s.c.ok(n.i, "ListResourceTags", err) {
			for x := range s.kTags {
				k := fmt.Sprint("t", x)
				if got := kmsTag(out.Tags, k); !s.kTags[x].allows(got) {
					s.c.problem("lost update: node%d: tag %s of the shared key %s = %s; %s", n.i, k, s.tagKey, got, &s.kTags[x])
				}
			}
		}
		d, err := n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.tagSecret)})
		if s.c.ok(n.i, "DescribeSecret", err) {
			for x := range s.sTags {
				k := fmt.Sprint("t", x)
				if got := smTag(d.Tags, k); !s.sTags[x].allows(got) {
					s.c.problem("lost update: node%d: tag %s of the shared secret %s = %s; %s", n.i, k, s.tagSecret, got, &s.sTags[x])
				}
			}
		}
		d, err = n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.labelSecret)})
		if s.c.ok(n.i, "DescribeSecret", err) {
			for x := range s.labels {
				label := fmt.Sprint("L", x)
				on := stageHolders(d.VersionIdsToStages, label)
				if len(on) != 1 || !s.labels[x].allows(on[0]) {
					s.c.problem("lost update: node%d: label %s of %s on versions %v; %s", n.i, label, s.labelSecret, on, &s.labels[x])
				}
			}
		}
	}
	s.t.Logf("checked %d keys, %d ciphertexts, %d secret versions of the cross-node workers, the taggers' tags and the labels", keys, cts, versions)
	if keys < 10 || cts < 10 || versions < 10 {
		s.c.problem("too few acknowledged writes for the test to mean anything: %d keys, %d ciphertexts, %d versions", keys, cts, versions)
	}
}

// checkPutRaces checks the shared secrets the putters wrote through
// different nodes at once. Their commits must have an order that agrees
// with real time (a put acknowledged before another was sent comes first);
// AWSCURRENT is then the last put of that order and AWSPREVIOUS the one
// before. So AWSCURRENT must be a put, and no acknowledged put may have
// been sent after AWSCURRENT's was acknowledged; AWSPREVIOUS must be
// another put, not sent after AWSCURRENT's was acknowledged, and no
// acknowledged put but AWSCURRENT may have been sent after AWSPREVIOUS's
// was acknowledged. Every acknowledged put's version must hold its value.
func (s *stream) checkPutRaces() {
	ctx := s.ctx
	acked := 0
	for i, sh := range s.shared {
		n := s.c.nodes[i%3]
		d, err := n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(sh.name)})
		if !s.c.ok(n.i, "DescribeSecret", err) {
			continue
		}
		cur := stageHolders(d.VersionIdsToStages, "AWSCURRENT")
		prev := stageHolders(d.VersionIdsToStages, "AWSPREVIOUS")
		var ackedPuts []*put
		for _, p := range sh.puts {
			if p.acked && p.value != "initial" {
				ackedPuts = append(ackedPuts, p)
			}
		}
		if len(ackedPuts) == 0 {
			continue
		}
		acked += len(ackedPuts)
		if len(cur) != 1 || len(prev) != 1 {
			s.c.problem("node%d DescribeSecret(%s): AWSCURRENT on %v, AWSPREVIOUS on %v; want one version each", n.i, sh.name, cur, prev)
			continue
		}
		c, p := sh.puts[cur[0]], sh.puts[prev[0]]
		switch {
		case c == nil || p == nil:
			s.c.problem("%s: AWSCURRENT %s, AWSPREVIOUS %s: a version no put made", sh.name, cur[0], prev[0])
			continue
		case c.acked && p.start.After(c.end):
			s.c.problem("lost update: %s: AWSPREVIOUS is %q, sent %s after AWSCURRENT %q was acknowledged", sh.name, p.value, p.start.Sub(c.end), c.value)
		}
		for _, y := range ackedPuts {
			if y != c && c.acked && y.start.After(c.end) {
				s.c.problem("lost update: %s: AWSCURRENT is %q, but %q, sent %s after that was acknowledged, was acknowledged too", sh.name, c.value, y.value, y.start.Sub(c.end))
			}
			if y != c && y != p && p.acked && y.start.After(p.end) {
				s.c.problem("lost update: %s: AWSPREVIOUS is %q, but %q, sent %s after that was acknowledged, was acknowledged too and is not AWSCURRENT (%q)", sh.name, p.value, y.value, y.start.Sub(p.end), c.value)
			}
			m := s.c.nodes[(i+len(y.id))%3]
			out, err := m.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(sh.name), VersionId: aws.String(y.id)})
			if err != nil || aws.ToString(out.SecretString) != y.value {
				s.c.problem("lost write: node%d GetSecretValue(%s, version %s), acknowledged with %q: %v", m.i, sh.name, y.id, y.value, err)
			}
		}
	}
	s.t.Logf("checked %d acknowledged puts into %d shared secrets", acked, len(s.shared))
	if acked < 20 {
		s.c.problem("too few puts into the shared secrets acknowledged (%d) for the test to mean anything", acked)
	}
}

// checkJobsBefore checks that no job has run yet.
func (s *stream) checkJobsBefore() {
	ctx := s.ctx
	var dk, rk, ds int
	for _, r := range s.delKeys {
		dk += b2i(r.acked)
	}
	for j, r := range s.rotKeys {
		rk += b2i(r.acked)
		n := s.c.nodes[j%3]
		out, err := n.kms.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(r.id)})
		if s.c.ok(n.i, "ListKeyRotations", err) && len(out.Rotations) != 0 {
			s.c.problem("node%d ListKeyRotations(%s): %d rotations before its period passed", n.i, r.id, len(out.Rotations))
		}
	}
	for _, r := range s.delSecrets {
		ds += b2i(r.acked)
	}
	s.t.Logf("jobs given: %d keys scheduled for deletion, %d keys rotating every 90 days, %d secrets deleted with a 7-day window (acknowledged)", dk, rk, ds)
	if dk < 3 || rk < 3 || ds < 3 {
		s.c.problem("too few jobs given for the test to mean anything: %d key deletions, %d rotations, %d secret deletions", dk, rk, ds)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkJobsAfter checks, once the clocks passed every date, that each job
// ran once: each key scheduled for deletion is gone on every node, each
// deleted secret too, and each rotating key rotated exactly once (its
// second date is 180 days on). A call without an answer may not have
// scheduled anything: such a key or secret is either gone or not pending.
func (s *stream) checkJobsAfter() {
	ctx := s.ctx
	for _, r := range s.delKeys {
		for _, n := range s.c.nodes {
			d, err := n.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.id)})
			switch {
			case errCode(err) == "NotFoundException":
			case err != nil:
				s.c.ok(n.i, "DescribeKey", err)
			case r.acked:
				s.c.problem("job not run: node%d DescribeKey(%s) = %s 84 days after its deletion date (ScheduleKeyDeletion acknowledged by node%d)", n.i, r.id, d.KeyMetadata.KeyState, r.by)
			case d.KeyMetadata.KeyState == types.KeyStatePendingDeletion:
				s.c.problem("job not run: node%d DescribeKey(%s) = PendingDeletion 84 days after its deletion date", n.i, r.id)
			}
		}
	}
	for j, r := range s.rotKeys {
		n := s.c.nodes[j%3]
		out, err := n.kms.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(r.id)})
		if !s.c.ok(n.i, "ListKeyRotations", err) {
			continue
		}
		switch got := len(out.Rotations); {
		case got > 1:
			s.c.problem("job ran %d times: node%d ListKeyRotations(%s) lists %d rotations after one 90-day period (EnableKeyRotation on node%d)", got, n.i, r.id, got, r.by)
		case got == 0 && r.acked:
			s.c.problem("job not run: node%d ListKeyRotations(%s) lists no rotation 91 days after EnableKeyRotation (90 days) was acknowledged by node%d", n.i, r.id, r.by)
		case got == 1 && out.Rotations[0].RotationType != types.RotationTypeAutomatic:
			s.c.problem("node%d ListKeyRotations(%s): rotation type %s, want AUTOMATIC", n.i, r.id, out.Rotations[0].RotationType)
		}
	}
	for _, r := range s.delSecrets {
		for _, n := range s.c.nodes {
			d, err := n.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.id)})
			switch {
			case errCode(err) == "ResourceNotFoundException":
			case err != nil:
				s.c.ok(n.i, "DescribeSecret", err)
			case r.acked || d.DeletedDate != nil:
				s.c.problem("job not run: node%d DescribeSecret(%s) answers 84 days after its recovery window ended (DeleteSecret by node%d, acknowledged %v)", n.i, r.id, r.by, r.acked)
			}
		}
	}
}
