// Command loadgen drives a Keyfort server through the AWS SDK for Go v2 over
// HTTP with N concurrent clients and prints requests/s, p50 and p99 latency
// and server CPU per request for each operation, next to the "floor": the
// same SDK client against a bare Go HTTP server that returns a fixed answer.
//
// It starts the keyfort binary itself (on 127.0.0.1, a fresh data directory)
// so that server CPU and RSS can be read from /proc, seeds it with -keys keys
// and -secrets secrets, runs each operation for -d, and stops the server. All traffic goes to
// loopback and every loop is bounded in time.
//
// With -nodes N (and -store, a PostgreSQL URL), it starts N keyfort servers
// on the same store with one root key, as several nodes behind a load
// balancer; each client's requests go to the nodes in turn (resolved before
// signing), and a row's server CPU per request is the CPU of all N servers
// over its requests.
//
// With -beside-embedded (and -store), it also starts a server on the
// embedded store, seeded the same way, and runs each service operation there
// just before its -store row, so the two stores are compared in one run, on
// the same machine load; a line after the table gives each -store row's rate
// as a share of the embedded store's.
//
// The last column states the issues' target for the operation, its rate
// scaled by this run's FloorProcess against the 12,800 requests/s the issues
// assume for the floor on a quiet machine, and whether the row meets it.
//
// The floor rows: "Floor" is the bare server in this process (an Encrypt
// answer); "FloorProcess" is the same server in a process of its own, as
// keyfort is, so its row also shows that server's CPU per request.
// "FloorDurable" is that process answering TagResource only once the request
// body is appended to a file and fsynced (concurrent requests share one
// fsync): the least any server must do on this disk for a write that
// survives power loss, beside Keyfort's TagResource.
// "FloorListSecrets" is that process answering ListSecrets with a canned page:
// the first real page of 100 entries this run's keyfort server returns (as
// the "ListSecrets" row walks them; fetched just before the row runs, so the
// rows before it see the server as they did without it), driven by the same
// SDK call with the same NextToken loop. A page of 100 entries costs the SDK
// client far more CPU than an Encrypt answer (it decodes every entry), so on
// a small machine the client alone bounds pages/s; that row shows the most
// this client can drive, and the line after the table puts ListSecrets
// beside it.
//
//	go build -o /tmp/keyfort ./cmd/keyfort
//	go run ./bench/loadgen -binary /tmp/keyfort -c 8 -d 5s -keys 10000 -secrets 10000
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	n        int
	errs     int
	dur      time.Duration
	p50, p99 time.Duration
	cpuPerOp time.Duration // server CPU per request (0 when unknown)
	rss      string        // server RSS after the run
	client   time.Duration // this process's CPU per request (the SDK clients; for Floor also the floor server)
	firstErr error
}

func (r result) rps() float64 { return float64(r.n) / r.dur.Seconds() }

func run() error {
	binary := flag.String("binary", "", "keyfort binary to start (required)")
	floorServer := flag.String("floor-server", "", "internal: serve the floor's fixed answer on this address (loadgen starts itself with it)")
	floorDir := flag.String("floor-dir", "", "internal: the floor server's directory, for FloorDurable's log")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "duration of each operation's run")
	nkeys := flag.Int("keys", 10000, "keys to create before measuring (ListKeys size, RSS)")
	nsecrets := flag.Int("secrets", 10000, "Secrets Manager secrets to create before measuring (ListSecrets size, RSS)")
	opsFlag := flag.String("ops", "Floor,FloorProcess,Encrypt,EncryptStrict,Decrypt,GenerateDataKey,DescribeKey,CreateKey,TagResource,FloorDurable,ListResourceTags,ListKeys,ListAliases,"+
		"GetSecretValue,GetSecretValueStrict,DescribeSecret,ListSecrets,FloorListSecrets,PutSecretValue,CreateSecret", "operations to run (also SignP256, VerifyP256, GenerateMac, VerifyMac, DeriveSharedSecret, SignMLDSA65, SignRSA4096, SignSecp256k1, GenerateDataKeyPairP256, GenerateDataKeyPairRSA2048)")
	store := flag.String("store", "", "the server's --store: empty for the embedded store, or a postgres:// URL (a schema of its own is made, and dropped after the run)")
	beside := flag.Bool("beside-embedded", false, "with -store: also run each service operation on a server on the embedded store, in the same run, just before its -store row (rows named \"<op> (embedded)\"), and compare")
	nodes := flag.Int("nodes", 1, "keyfort servers on the same -store (requires -store when more than 1); clients spread their requests over them")
	rounds := flag.Int("rounds", 1, "run the -ops list this many times in a row, then FloorProcess once more, and summarize each operation's server CPU and rate against the FloorProcess rows around it (median over the rounds)")
	clientGC := flag.Int("client-gogc", 400, "this process's GOGC while it drives the servers (not the floor server's): at 100 its few-MiB heap was collected every 7 ms, taking CPU and caches from the server it measures on the same cores")
	flag.Parse()
	if *floorServer != "" {
		return serveFloor(*floorServer, *floorDir)
	}
	debug.SetGCPercent(*clientGC)
	if *binary == "" {
		return errors.New("-binary is required (go build -o /tmp/keyfort ./cmd/keyfort)")
	}
	if *dur > 2*time.Minute {
		return errors.New("-d is capped at 2m")
	}
	if *rounds < 1 || *rounds > 20 {
		return errors.New("-rounds must be from 1 to 20")
	}
	if *nodes < 1 || *nodes > 16 {
		return errors.New("-nodes must be from 1 to 16")
	}
	if *beside && *store == "" {
		return errors.New("-beside-embedded requires -store")
	}
	if *nodes > 1 && *store == "" {
		return errors.New("-nodes > 1 requires -store (a postgres:// URL the nodes share)")
	}

	serverStore := ""
	if *store != "" {
		dsn, drop, err := freshSchema(*store)
		if err != nil {
			return err
		}
		defer drop()
		serverStore = dsn
	}
	srv, err := startCluster(*binary, serverStore, *nodes)
	if err != nil {
		return err
	}
	defer srv.stop()
	ctx := context.Background()

	fmt.Printf("# keyfort load: %d clients, %s per operation, GOMAXPROCS host cores %d\n", *conc, *dur, numCPU())
	if *nodes > 1 {
		fmt.Printf("# %d keyfort nodes on one PostgreSQL schema; each client's requests go to the nodes in turn; server CPU/req is summed over the nodes\n", *nodes)
	}
	svc, err := prepare(ctx, srv, *nkeys, *nsecrets, *conc)
	if err != nil {
		return err
	}
	key := svc.key
	var embedded *cluster // -beside-embedded: the embedded store's server
	var embOps map[string]opFunc
	if *beside {
		if embedded, err = startCluster(*binary, "", 1); err != nil {
			return err
		}
		defer embedded.stop()
		fmt.Println("# -beside-embedded: the same seeding on a server on the embedded store")
		esvc, err := prepare(ctx, embedded, *nkeys, *nsecrets, *conc)
		if err != nil {
			return err
		}
		embOps = esvc.ops
	}

	floor, err := startFloor()
	if err != nil {
		return err
	}
	defer floor.Close()
	floorClient := newClient(*conc, "http://"+floor.Addr().String())
	procFloor, err := startFloorProcess()
	if err != nil {
		return err
	}
	defer procFloor.stop()
	procFloorClient := newClient(*conc, "http://"+procFloor.addr)
	procFloorSM := newSMClient(*conc, "http://"+procFloor.addr)

	ops := map[string]func(ctx context.Context, w, i int) error{
		"Floor": func(ctx context.Context, w, i int) error {
			_, err := floorClient.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: make([]byte, 64)})
			return err
		},
		"FloorProcess": func(ctx context.Context, w, i int) error {
			_, err := procFloorClient.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: make([]byte, 64)})
			return err
		},
	}
	for name, fn := range svc.ops {
		ops[name] = fn
	}
	ops["FloorListSecrets"] = listWalk(procFloorSM, *conc)
	ops["FloorDurable"] = func(ctx context.Context, w, i int) error {
		_, err := procFloorClient.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key),
			Tags: []types.Tag{{TagKey: aws.String(fmt.Sprintf("w%d", w)), TagValue: aws.String(strconv.Itoa(i))}}})
		return err
	}
	var strictSrv *server // the strict-mode server, started for the first *Strict row
	defer func() {
		if strictSrv != nil {
			strictSrv.stop()
		}
	}()
	var listPage *capturedPage // FloorListSecrets' answer, fetched when first needed
	var results []result
	names := strings.Split(*opsFlag, ",")
	if *rounds > 1 {
		once := names
		for range *rounds - 1 {
			names = append(names, once...)
		}
		names = append(names, "FloorProcess")
	}
	for _, name := range names {
		if strings.HasSuffix(name, "Strict") && strictSrv == nil {
			if strictSrv, err = startStrictServer(*binary); err != nil {
				return err
			}
			sops, err := strictOps(ctx, "http://"+strictSrv.addr, *conc)
			if err != nil {
				return err
			}
			for n, fn := range sops {
				ops[n] = fn
			}
		}
		fn, ok := ops[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown operation %q", name)
		}
		if name == "FloorListSecrets" && listPage == nil {
			if listPage, err = firstListPage(ctx, srv.endpoints()[0]); err != nil {
				return err
			}
			if err := setFloorListPage(procFloor.addr, listPage.body); err != nil {
				return err
			}
		}
		if efn, ok := embOps[name]; ok {
			r := measureRow(name+" (embedded)", embedded, *conc, *dur, efn)
			results = append(results, r)
		}
		var measured meter = srv // whose CPU and RSS the row reports
		switch {
		case name == "Floor":
			measured = nil // in this process: no server of its own
		case name == "FloorProcess" || name == "FloorListSecrets" || name == "FloorDurable":
			measured = procFloor
		case strings.HasSuffix(name, "Strict"):
			measured = strictSrv
		}
		r := measureRow(name, measured, *conc, *dur, fn)
		results = append(results, r)
	}
	var floorRPS, procRPS float64
	for _, r := range results {
		switch r.name {
		case "Floor":
			floorRPS = r.rps()
		case "FloorProcess":
			procRPS = r.rps()
		}
	}
	fmt.Printf("\n| operation | requests/s | vs Floor | vs FloorProcess | p50 | p99 | server CPU/req | client CPU/req | errors | server RSS after | issue target, scaled to this run |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		vs, vsProc := "-", "-"
		if floorRPS > 0 {
			vs = fmt.Sprintf("%.0f%%", 100*r.rps()/floorRPS)
		}
		if procRPS > 0 {
			vsProc = fmt.Sprintf("%.0f%%", 100*r.rps()/procRPS)
		}
		cpu := "-"
		if r.cpuPerOp > 0 {
			cpu = fmt.Sprintf("%d µs", r.cpuPerOp.Microseconds())
		}
		rss := r.rss
		if rss == "" {
			rss = "-"
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %d µs | %d | %s | %s |\n", r.name, r.rps(), vs, vsProc, fmtDur(r.p50), fmtDur(r.p99), cpu, r.client.Microseconds(), r.errs, rss, targetCell(r, procRPS))
		if r.firstErr != nil {
			fmt.Printf("  first error of %s: %v\n", r.name, r.firstErr)
		}
	}
	var list, floorListRow, tag, floorDurable *result
	for i := range results {
		switch results[i].name {
		case "ListSecrets":
			list = &results[i]
		case "FloorListSecrets":
			floorListRow = &results[i]
		case "TagResource":
			tag = &results[i]
		case "FloorDurable":
			floorDurable = &results[i]
		}
	}
	if tag != nil && floorDurable != nil && floorDurable.rps() > 0 {
		fmt.Printf("\nTagResource: %.0f/s, %.0f%% of FloorDurable (%.0f/s: the same SDK call answered by a bare server once the request is appended to a file and fsynced, one fsync per group)\n",
			tag.rps(), 100*tag.rps()/floorDurable.rps(), floorDurable.rps())
	}
	if list != nil && floorListRow != nil && listPage != nil && floorListRow.rps() > 0 {
		fmt.Printf("\nListSecrets: %.0f pages/s, %.0f%% of FloorListSecrets (%.0f pages/s: the same SDK call answered by a canned page of %d entries)\n",
			list.rps(), 100*list.rps()/floorListRow.rps(), floorListRow.rps(), listPage.entries)
	}
	byName := map[string]*result{}
	for i := range results {
		byName[results[i].name] = &results[i]
	}
	for _, op := range []string{"Encrypt", "GetSecretValue"} {
		dev, strict := byName[op], byName[op+"Strict"]
		if dev != nil && strict != nil && dev.rps() > 0 && dev.n > 0 && strict.n > 0 {
			fmt.Printf("\n%sStrict (strict SigV4, an ABAC identity policy, the key policy): %.0f/s, %.0f%% of dev mode's %.0f/s; server CPU %d µs against %d µs per request (issue target: at least 85%%)\n",
				op, strict.rps(), 100*strict.rps()/dev.rps(), dev.rps(), strict.cpuPerOp.Microseconds(), dev.cpuPerOp.Microseconds())
		}
	}
	for _, r := range results {
		emb := byName[r.name+" (embedded)"]
		if emb == nil || emb.rps() == 0 || r.n == 0 {
			continue
		}
		fmt.Printf("\n%s on the -store: %.0f/s, %.0f%% of the embedded store's %.0f/s in this run (issue 13's target for Encrypt, GetSecretValue, ListSecrets: at least 80%%); p50 %s against %s; server CPU %d µs against %d µs per request\n",
			r.name, r.rps(), 100*r.rps()/emb.rps(), emb.rps(), fmtDur(r.p50), fmtDur(emb.p50), r.cpuPerOp.Microseconds(), emb.cpuPerOp.Microseconds())
	}
	printBesideFloors(results)
	fmt.Printf("\nserver RSS after the run: %s\n", srv.rss())
	return nil
}

// hotPath are the operations issue 12 holds to FloorProcess's cost: server
// CPU per request at most 1.3 times its, and a rate of at least 90% of its.
var hotPath = map[string]bool{"Encrypt": true, "Decrypt": true, "GenerateDataKey": true, "GetSecretValue": true}

// printBesideFloors compares each row that has a server CPU with the
// FloorProcess rows just before and after it (their mean), so that a
// machine whose speed drifts during the run moves both sides alike; an
// operation run several times (-rounds) gets the median of its ratios.
func printBesideFloors(results []result) {
	type ratios struct{ cpu, rate []float64 }
	by := map[string]*ratios{}
	var order []string
	for i, r := range results {
		if strings.HasPrefix(r.name, "Floor") || r.cpuPerOp <= 0 || r.n == 0 { // the floors themselves
			continue
		}
		var around []result
		for j := i - 1; j >= 0; j-- {
			if results[j].name == "FloorProcess" {
				around = append(around, results[j])
				break
			}
		}
		for j := i + 1; j < len(results); j++ {
			if results[j].name == "FloorProcess" {
				around = append(around, results[j])
				break
			}
		}
		var cpu, rate float64
		for _, f := range around {
			cpu += float64(f.cpuPerOp) / float64(len(around))
			rate += f.rps() / float64(len(around))
		}
		if cpu <= 0 || rate <= 0 {
			continue
		}
		x := by[r.name]
		if x == nil {
			x = &ratios{}
			by[r.name] = x
			order = append(order, r.name)
		}
		x.cpu = append(x.cpu, float64(r.cpuPerOp)/cpu)
		x.rate = append(x.rate, r.rps()/rate)
	}
	if len(order) == 0 {
		return
	}
	fmt.Printf("\nBeside the FloorProcess rows around each row (median over its rows):\n\n| operation | server CPU / FloorProcess's | each row | rate / FloorProcess's | issue 12 (CPU <= 1.3x, rate >= 90%%) |\n|---|---:|---|---:|---|\n")
	for _, name := range order {
		x := by[name]
		each := make([]string, len(x.cpu))
		for i, v := range x.cpu {
			each[i] = fmt.Sprintf("%.2f", v)
		}
		cpu, rate := median(x.cpu), median(x.rate)
		verdict := ""
		if hotPath[name] {
			verdict = "**not met**"
			if cpu <= 1.3 && rate >= 0.9 {
				verdict = "met"
			}
		}
		fmt.Printf("| %s | %.2fx | %s | %.0f%% | %s |\n", name, cpu, strings.Join(each, " "), 100*rate, verdict)
	}
}

// median returns the middle value of v (the mean of the two middle ones
// for an even count); v is sorted in place.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// referenceFloor is the floor the issues' speed targets assume: a bare Go
// server giving a fixed answer reaches about 12,800 requests/s on a quiet
// machine of this size. Keyfort runs in a process of its own, so a run's
// FloorProcess row is the same measurement here.
const referenceFloor = 12800

// issueTargets are the issues' figures at 8 concurrent clients: a rate, and
// for some operations a p99 bound or a p50 bound for list pages.
var issueTargets = map[string]struct {
	rps      float64
	p99, p50 time.Duration
}{
	"Encrypt":          {rps: 10000, p99: 4 * time.Millisecond},
	"Decrypt":          {rps: 10000, p99: 4 * time.Millisecond},
	"GenerateDataKey":  {rps: 10000, p99: 4 * time.Millisecond},
	"CreateKey":        {rps: 2000},
	"TagResource":      {rps: 8000},
	"ListResourceTags": {rps: 8000},
	"ListKeys":         {p50: 2 * time.Millisecond},
	"ListAliases":      {p50: 2 * time.Millisecond},
	"GetSecretValue":   {rps: 10000, p99: 4 * time.Millisecond},
	"DescribeSecret":   {rps: 5000},
	"ListSecrets":      {rps: 5000},
	"PutSecretValue":   {rps: 1500},
	"CreateSecret":     {rps: 1500},
}

// targetCell states the issue's target for r, its rate scaled by this run's
// FloorProcess against the reference floor, and whether r meets it. Latency
// bounds are not scaled.
func targetCell(r result, procRPS float64) string {
	t, ok := issueTargets[r.name]
	if !ok {
		return ""
	}
	var parts []string
	met := true
	if t.rps > 0 {
		want := t.rps
		if procRPS > 0 {
			want = t.rps * procRPS / referenceFloor
		}
		parts = append(parts, fmt.Sprintf(">= %.0f/s (%.0f at the reference floor)", want, t.rps))
		met = met && r.rps() >= want
	}
	if t.p99 > 0 {
		parts = append(parts, "p99 <= "+fmtDur(t.p99))
		met = met && r.p99 <= t.p99
	}
	if t.p50 > 0 {
		parts = append(parts, "p50 < "+fmtDur(t.p50))
		met = met && r.p50 < t.p50
	}
	verdict := "met"
	if !met {
		verdict = "**not met**"
	}
	return strings.Join(parts, ", ") + ": " + verdict
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// measure runs fn from conc goroutines for d and collects latencies.
func measure(name string, conc int, d time.Duration, fn func(ctx context.Context, w, i int) error) result {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				err := fn(ctx, w, i)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					errs[w]++
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := result{name: name, dur: elapsed, firstErr: firstErr}
	for w := range conc {
		all = append(all, lat[w]...)
		r.errs += errs[w]
	}
	r.n = len(all) - r.errs
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// newClient returns a KMS client for conc concurrent callers that sends
// its requests to the endpoints in turn.
func newClient(conc int, endpoints ...string) *kms.Client {
	tr := &http.Transport{MaxIdleConns: conc * 2 * len(endpoints), MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoints[0]),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOADGEN", "secret", ""),
		Retryer:      closedConnRetryer(),
		HTTPClient:   &http.Client{Transport: tr},
	}, func(o *kms.Options) {
		if len(endpoints) > 1 {
			o.EndpointResolverV2 = kmsNodes{newRoundRobin(endpoints)}
		}
	})
}

// seed creates n keys (and aliases for the first 1000) with conc workers.
func seed(ctx context.Context, c *kms.Client, n, conc int) ([]string, error) {
	ids := make([]string, n)
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
				mu.Unlock()
				if i >= n {
					return
				}
				out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("loadgen")})
				if err == nil && i < 1000 {
					_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/loadgen-%05d", i)), TargetKeyId: out.KeyMetadata.KeyId})
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				ids[i] = aws.ToString(out.KeyMetadata.KeyId)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("seeding keys: %w", firstErr)
	}
	if n == 0 {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			return nil, err
		}
		ids = []string{aws.ToString(out.KeyMetadata.KeyId)}
	}
	return ids, nil
}

// floorListPath is where loadgen PUTs the ListSecrets page the floor
// server answers.
const floorListPath = "/floor/list-page"

// floorHandler answers every request with a fixed, valid Encrypt response,
// or a ListSecrets request with the page last PUT to floorListPath (once
// there is one). With a log, a TagResource request is appended to it and
// answered once durable (FloorDurable).
func floorHandler(log *groupLog) http.Handler {
	body := []byte(`{"CiphertextBlob":"AQIDBAUGBwgJCgsMDQ4PEA==","KeyId":"arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-8444-555555555555","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)
	var listPage atomic.Pointer[[]byte]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == floorListPath {
			b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			listPage.Store(&b)
			return
		}
		if log != nil && r.Header.Get("X-Amz-Target") == "TrentService.TagResource" {
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err == nil {
				err = log.append(append(b, '\n'))
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = w.Write([]byte("{}"))
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
		if p := listPage.Load(); p != nil && r.Header.Get("X-Amz-Target") == "secretsmanager.ListSecrets" {
			_, _ = w.Write(*p)
			return
		}
		_, _ = w.Write(body)
	})
}

// setFloorListPage makes the floor server at addr answer ListSecrets with
// page.
func setFloorListPage(addr string, page []byte) error {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+floorListPath, bytes.NewReader(page))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("floor list page: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("floor list page: HTTP %d", resp.StatusCode)
	}
	return nil
}

// serveFloor runs the floor server in this process until SIGTERM (or 10
// minutes): loadgen's "FloorProcess" and "FloorListSecrets" rows, a bare
// net/http server in a process of its own, as the keyfort server is.
func serveFloor(addr, dir string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var log *groupLog
	if dir != "" {
		if log, err = openGroupLog(dir); err != nil {
			return err
		}
	}
	go func() { _ = http.Serve(l, floorHandler(log)) }()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	select {
	case <-ch:
	case <-time.After(10 * time.Minute):
	}
	return l.Close()
}

// startFloorProcess starts this program as a floor server in its own
// process.
func startFloorProcess() (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(self, func(addr, dir string) []string { return []string{"-floor-server", addr, "-floor-dir", dir} })
}

// startFloor starts a bare Go HTTP server that answers every request with a
// fixed, valid Encrypt response: what the SDK client itself can drive.
func startFloor() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = http.Serve(l, floorHandler(nil)) }()
	return l, nil
}

type server struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startServer starts keyfort on store (empty: the embedded store) with the
// root key in rootKeyFile (empty: generated in its data directory).
func startServer(binary, store, rootKeyFile string) (*server, error) {
	return startProcess(binary, func(addr, dir string) []string {
		args := []string{"serve", "--listen", addr, "--data", filepath.Join(dir, "data"), "--log-level", "warn"}
		if store != "" {
			args = append(args, "--store", store)
		}
		if rootKeyFile != "" {
			args = append(args, "--root-key-file", rootKeyFile)
		}
		return args
	})
}

// startProcess starts binary with the arguments args gives for a free
// loopback address and a fresh directory, and waits for GET /health.
func startProcess(binary string, args func(addr, dir string) []string) (*server, error) {
	dir, err := os.MkdirTemp("", "keyfort-loadgen-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(binary, args(addr, dir)...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	s := &server{cmd: cmd, addr: addr, dir: dir}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
	}
	s.stop()
	return nil, errors.New("server did not become healthy")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	_ = os.RemoveAll(s.dir)
}

// cpu returns the server process's user+system CPU time from /proc.
func (s *server) cpu() time.Duration { return procCPU(strconv.Itoa(s.cmd.Process.Pid)) }

// procCPU returns the user+system CPU time of a process ("self" for this
// one) from /proc.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ = 100
}

// rss returns the server's resident set size from /proc.
func (s *server) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "unknown"
}

// closedConnRetryer retries only a request whose connection the SDK's own
// HTTP client closed under it (net.ErrClosed, aws/aws-sdk-go-v2#2737; the
// SDK's default retryer retries it too). Server errors are never retried, so
// the errors column counts every error the server returned.
func closedConnRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, net.ErrClosed) {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
		o.RateLimiter = ratelimit.None
	})
}

// freshSchema creates a schema of its own in the PostgreSQL database at dsn
// and returns a DSN whose connections use it, and a function that drops it.
func freshSchema(dsn string) (string, func(), error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("-store: %w", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("keyfort_loadgen_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("-store: create schema: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("-store: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
		}
	}
	return u.String(), drop, nil
}

// opFunc is one operation of a row: worker w's i-th call.
type opFunc = func(ctx context.Context, w, i int) error

// prepared is a seeded server and the service operations run against it.
type prepared struct {
	key string // the first seeded key (Encrypt's, tags')
	ops map[string]opFunc
}

// prepare seeds the servers of c (keys, aliases, secrets, a ciphertext and
// tags) and returns the service operations on them.
func prepare(ctx context.Context, srv *cluster, nkeys, nsecrets, conc int) (*prepared, error) {
	client := newClient(conc, srv.endpoints()...)
	start := time.Now()
	seedKeys, err := seed(ctx, client, nkeys, conc)
	if err != nil {
		return nil, err
	}
	fmt.Printf("seeded %d keys and %d aliases in %s; server RSS %s\n", nkeys, min(nkeys, 1000), time.Since(start).Round(time.Millisecond), srv.rss())
	smClient := newSMClient(conc, srv.endpoints()...)
	start = time.Now()
	if err := seedSecrets(ctx, smClient, nsecrets, conc); err != nil {
		return nil, err
	}
	fmt.Printf("seeded %d secrets in %s; server RSS %s\n", nsecrets, time.Since(start).Round(time.Millisecond), srv.rss())

	key := seedKeys[0]
	ct, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: make([]byte, 64)})
	if err != nil {
		return nil, fmt.Errorf("seed ciphertext: %w", err)
	}
	for i := range 10 {
		_, err := client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key), Tags: []types.Tag{{TagKey: aws.String(fmt.Sprintf("tag%d", i)), TagValue: aws.String("v")}}})
		if err != nil {
			return nil, fmt.Errorf("seed tags: %w", err)
		}
	}

	ops := map[string]opFunc{
		"Encrypt": func(ctx context.Context, w, i int) error {
			_, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: make([]byte, 64)})
			return err
		},
		"Decrypt": func(ctx context.Context, w, i int) error {
			_, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
			return err
		},
		"GenerateDataKey": func(ctx context.Context, w, i int) error {
			_, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes256})
			return err
		},
		"DescribeKey": func(ctx context.Context, w, i int) error {
			_, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(seedKeys[(w*7919+i)%len(seedKeys)])})
			return err
		},
		"CreateKey": func(ctx context.Context, w, i int) error {
			_, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
			return err
		},
		"TagResource": func(ctx context.Context, w, i int) error {
			_, err := client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(seedKeys[(w*7919+i)%len(seedKeys)]),
				Tags: []types.Tag{{TagKey: aws.String(fmt.Sprintf("w%d", w)), TagValue: aws.String(strconv.Itoa(i))}}})
			return err
		},
		"ListResourceTags": func(ctx context.Context, w, i int) error {
			_, err := client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(key)})
			return err
		},
		"ListKeys": func(ctx context.Context, w, i int) error {
			_, err := client.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(100)})
			return err
		},
		"ListAliases": func(ctx context.Context, w, i int) error {
			_, err := client.ListAliases(ctx, &kms.ListAliasesInput{Limit: aws.Int32(100)})
			return err
		},
	}
	for name, fn := range smOps(smClient, nsecrets, conc) {
		ops[name] = fn
	}
	kops, err := keyTypeOps(ctx, client, key)
	if err != nil {
		return nil, err
	}
	for name, fn := range kops {
		ops[name] = fn
	}
	return &prepared{key: key, ops: ops}, nil
}

// measureRow runs fn as a row and reports this process's CPU per request
// and the CPU and RSS of m (none when m is nil).
func measureRow(name string, m meter, conc int, d time.Duration, fn opFunc) result {
	var cpu0 time.Duration
	if m != nil {
		cpu0 = m.cpu()
	}
	self0 := procCPU("self")
	r := measure(name, conc, d, fn)
	if r.n > 0 {
		r.client = (procCPU("self") - self0) / time.Duration(r.n)
		if m != nil {
			r.cpuPerOp = (m.cpu() - cpu0) / time.Duration(r.n)
			r.rss = m.rss()
		}
	}
	return r
}
