// Command onesecret measures one client reading one secret through the SDK
// from a server on PostgreSQL holding n secrets: the latency, the server's
// CPU per request and the database's work per request (pg_stat counters of
// the whole database, so run it on a quiet one). Issue 13 asked why this
// read slowed as secrets were added; see docs/benchmarks.md.
//
//	go build -o /tmp/keyfort ./cmd/keyfort && go run ./bench/onesecret -binary /tmp/keyfort -n 5000
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
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
	bin := flag.String("binary", "", "keyfort binary to start (required)")
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of its own is created and dropped)")
	n := flag.Int("n", 1, "secrets to create")
	reqs := flag.Int("reqs", 2000, "GetSecretValue calls to time")
	keep := flag.Bool("keep", false, "keep the schema")
	pause := flag.Duration("pause", 0, "wait after creating the secrets")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "onesecret: -binary is required")
		os.Exit(2)
	}
	if *n < 1 || *n > 100000 || *reqs < 1 || *reqs > 1000000 {
		fmt.Fprintln(os.Stderr, "onesecret: -n must be 1..100000 and -reqs 1..1000000")
		os.Exit(2)
	}
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := l.Addr().String()
	l.Close()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		panic(err)
	}
	schema := fmt.Sprintf("onesecret_%d", os.Getpid())
	conn.Exec(ctx, "CREATE SCHEMA "+schema)
	if !*keep {
		defer conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	} else {
		fmt.Println("schema", schema)
	}
	dir, _ := os.MkdirTemp("", "onesecret")
	defer os.RemoveAll(dir)
	cmd := exec.Command(*bin, "serve", "--listen", addr, "--data", dir, "--log-level", "error", "--store", *dsn+"&search_path="+schema)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get("http://" + addr + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			panic("server did not become healthy")
		}
	}
	c := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "x", "")})
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprintf("s%06d", i)), SecretString: aws.String("v")}); err != nil {
					panic(err)
				}
			}
		}()
	}
	for i := range *n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	stats := func() (int64, int64, int64) {
		var commits, fetched, scans int64
		conn.QueryRow(ctx, "SELECT xact_commit, tup_fetched FROM pg_stat_database WHERE datname = current_database()").Scan(&commits, &fetched)
		conn.QueryRow(ctx, "SELECT coalesce(sum(coalesce(idx_scan,0)+coalesce(seq_scan,0)),0) FROM pg_stat_user_tables WHERE schemaname = $1", schema).Scan(&scans)
		return commits, fetched, scans
	}
	time.Sleep(*pause)
	for range 200 {
		c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s000000")})
	}
	time.Sleep(700 * time.Millisecond) // stats are flushed at most once a second
	c0, f0, s0 := stats()
	cpu0 := procCPU(cmd.Process.Pid)
	lat := make([]time.Duration, 0, *reqs)
	for range *reqs {
		t := time.Now()
		if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s000000")}); err != nil {
			panic(err)
		}
		lat = append(lat, time.Since(t))
	}
	cpu1 := procCPU(cmd.Process.Pid)
	time.Sleep(1500 * time.Millisecond)
	c1, f1, s1 := stats()
	fmt.Printf("  server CPU/req %v\n", (cpu1-cpu0)/time.Duration(*reqs))
	rows, _ := conn.Query(ctx, "SELECT relname, coalesce(seq_scan,0), coalesce(seq_tup_read,0), coalesce(idx_scan,0), coalesce(idx_tup_fetch,0), n_live_tup FROM pg_stat_user_tables WHERE schemaname = $1", schema)
	for rows.Next() {
		var name string
		var a, b, cc, d, e int64
		rows.Scan(&name, &a, &b, &cc, &d, &e)
		fmt.Printf("  %s: seq_scan %d seq_tup_read %d idx_scan %d idx_tup_fetch %d live %d\n", name, a, b, cc, d, e)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("n=%d p50=%v p90=%v commits/req=%.2f tuples fetched/req=%.1f table scans/req=%.2f\n", *n, lat[len(lat)/2], lat[len(lat)*9/10],
		float64(c1-c0)/float64(*reqs), float64(f1-f0)/float64(*reqs), float64(s1-s0)/float64(*reqs))
}

func procCPU(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(b))
	u, _ := strconv.ParseInt(f[13], 10, 64)
	st, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
