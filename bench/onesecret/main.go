// Command onesecret measures one SDK client reading one secret from a
// keyfort server on PostgreSQL that holds n secrets: the latency, the
// server's CPU per request, and the scans of each table of its schema per
// request (pg_stat_user_tables: the schema is the run's own, so other users
// of the database do not count). Issue 13 asked why this read slowed as
// secrets were added; docs/benchmarks.md has the answer and the figures.
//
//	CGO_ENABLED=0 go build -o /tmp/keyfort ./cmd/keyfort
//	go run ./bench/onesecret -binary /tmp/keyfort -n 5000
//
// It creates a schema of its own in -dsn's database and drops it at the end;
// all traffic goes to 127.0.0.1 and every loop is bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "onesecret:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("binary", "", "keyfort binary to start (required)")
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of its own is created and dropped)")
	n := flag.Int("n", 1, "secrets to create (1 to 100,000)")
	reqs := flag.Int("reqs", 2000, "GetSecretValue calls to time (1 to 1,000,000)")
	pause := flag.Duration("pause", 0, "wait this long after creating the secrets (at most 1m)")
	flag.Parse()
	switch {
	case *bin == "":
		return errors.New("-binary is required")
	case *n < 1 || *n > 100000 || *reqs < 1 || *reqs > 1000000:
		return errors.New("-n must be 1..100000 and -reqs 1..1000000")
	case *pause < 0 || *pause > time.Minute:
		return errors.New("-pause must be 0..1m")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("keyfort_onesecret_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "onesecret: drop schema:", err)
		}
	}()
	u, err := url.Parse(*dsn)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	srv, stop, err := startServer(*bin, u.String())
	if err != nil {
		return err
	}
	defer stop()
	c := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + srv.host),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "x", "")})
	if err := createSecrets(ctx, c, *n); err != nil {
		return err
	}
	time.Sleep(*pause)
	get := func() error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName(0))})
		return err
	}
	for range 200 { // warm up: caches, prepared statements, the day's access date
		if err := get(); err != nil {
			return err
		}
	}
	time.Sleep(700 * time.Millisecond) // table statistics are sent at most once a second
	scans0, err := tableScans(ctx, conn, schema)
	if err != nil {
		return err
	}
	cpu0, err := procCPU(srv.pid)
	if err != nil {
		return err
	}
	lat := make([]time.Duration, 0, *reqs)
	for range *reqs {
		t := time.Now()
		if err := get(); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	cpu1, err := procCPU(srv.pid)
	if err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	scans1, err := tableScans(ctx, conn, schema)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	fmt.Printf("n=%d: p50 %v, p90 %v, server CPU %v per request\n", *n, lat[len(lat)/2], lat[len(lat)*9/10], (cpu1-cpu0)/time.Duration(*reqs))
	for _, t := range slices.Sorted(maps.Keys(scans1)) {
		a, b := scans0[t], scans1[t]
		fmt.Printf("  %s: %.2f index scans, %.2f sequential scans per request\n", t, float64(b.idx-a.idx)/float64(*reqs), float64(b.seq-a.seq)/float64(*reqs))
	}
	return nil
}

// server is the started keyfort: its address and process id.
type server struct {
	host string
	pid  int
}

// startServer starts bin on a free loopback port on store and waits for
// GET /health.
func startServer(bin, store string) (server, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return server{}, nil, err
	}
	host := l.Addr().String()
	l.Close()
	dir, err := os.MkdirTemp("", "keyfort-onesecret-")
	if err != nil {
		return server{}, nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", host, "--data", dir, "--log-level", "error", "--store", store)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return server{}, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get("http://" + host + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return server{host: host, pid: cmd.Process.Pid}, stop, nil
			}
		}
	}
	stop()
	return server{}, nil, errors.New("the server did not become healthy in 20 s")
}

func secretName(i int) string { return fmt.Sprintf("s%06d", i) }

// createSecrets creates n secrets with 8 concurrent clients.
func createSecrets(ctx context.Context, c *secretsmanager.Client, n int) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ch := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(secretName(i)), SecretString: aws.String("v")})
				if err != nil {
					once.Do(func() { first = fmt.Errorf("CreateSecret: %w", err) })
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return first
}

type scans struct{ idx, seq int64 }

// tableScans returns the index and sequential scans of each table of schema.
func tableScans(ctx context.Context, conn *pgx.Conn, schema string) (map[string]scans, error) {
	rows, err := conn.Query(ctx, "SELECT relname, coalesce(idx_scan, 0), coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE schemaname = $1", schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]scans{}
	for rows.Next() {
		var name string
		var s scans
		if err := rows.Scan(&name, &s.idx, &s.seq); err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, rows.Err()
}

// procCPU returns the user and system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil // clock ticks of 10 ms
}
