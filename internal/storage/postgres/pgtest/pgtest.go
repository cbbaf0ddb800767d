// Package pgtest gives tests a PostgreSQL schema of their own in the
// database KEYFORT_TEST_POSTGRES names (.ci/run sets it). Only tests and the
// test harness (internal/keyfortest) import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns KEYFORT_TEST_POSTGRES, and skips the test without it.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("KEYFORT_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("KEYFORT_TEST_POSTGRES is not set")
	}
	return dsn
}

// Schema returns a new schema name, prefix followed by random hex digits,
// and drops that schema (with everything in it) when the test ends. It
// does not create the schema: the store that opens it does, or the caller.
func Schema(t testing.TB, dsn, prefix string) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	t.Cleanup(func() { Drop(t, dsn, schema) })
	return schema
}

// CreateSchema creates Schema(t, dsn, prefix) and returns dsn with its
// search_path set to it, so that a store or connection opened with the
// result works in it.
func CreateSchema(t testing.TB, dsn, prefix string) string {
	t.Helper()
	schema := Schema(t, dsn, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse KEYFORT_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Drop drops schema and everything in it; a failure fails the test.
func Drop(t testing.TB, dsn, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}
