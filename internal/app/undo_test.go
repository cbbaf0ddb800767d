package app_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
)

// TestFailedStartLeavesNothing starts on a port already in use: the start
// fails and leaves the data directory as it was: gone if it did not exist,
// empty if it was empty, its files (and only those) if it held data.
func TestFailedStartLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	onBusyPort := func(c *config.Config) { c.Listen = busy.Addr().String() }

	withData := t.TempDir()
	a, err := startApp(t, backend{name: "sqlite"}, withData, "")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	dataEntries := entries(t, withData)

	tests := []struct {
		name string
		dir  string
		want []string // nil: the directory does not exist
	}{
		{"new directory", filepath.Join(t.TempDir(), "a", "data"), nil},
		{"empty directory", t.TempDir(), []string{}},
		{"directory with data", withData, dataEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tls := range []bool{false, true} {
				_, err := startApp(t, backend{name: "sqlite"}, tt.dir, "", onBusyPort, func(c *config.Config) { c.TLSSelfSigned = tls })
				if err == nil || !strings.Contains(err.Error(), "address already in use") {
					t.Fatalf("start on a used port (tls %v) = %v, want address already in use", tls, err)
				}
				got := entries(t, tt.dir)
				if _, serr := os.Stat(tt.dir); tt.want == nil && !os.IsNotExist(serr) {
					t.Errorf("after a failed start (tls %v) the new data directory exists: %v", tls, got)
				} else if tt.want != nil && !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
					t.Errorf("after a failed start (tls %v) the data directory holds %v, want %v", tls, got, tt.want)
				}
			}
			if tt.want == nil {
				if _, err := os.Stat(filepath.Dir(filepath.Dir(tt.dir))); err != nil {
					t.Errorf("the existing parent of the data directory: %v", err)
				}
				if _, err := os.Stat(filepath.Dir(tt.dir)); !os.IsNotExist(err) {
					t.Errorf("the parent New created is left: %v", err)
				}
			}
		})
	}
	// The data directory still serves, with its root key.
	if _, err := startApp(t, backend{name: "sqlite"}, withData, ""); err != nil {
		t.Errorf("start after failed starts = %v", err)
	}
}

// TestLockedStartLeavesTheOtherProcessAlone checks that a start refused
// because another process holds the data directory removes nothing of it.
func TestLockedStartLeavesTheOtherProcessAlone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := startApp(t, backend{name: "sqlite"}, dir, ""); err != nil {
		t.Fatal(err)
	}
	before := entries(t, dir)
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	if a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }}); err == nil {
		a.Close()
		t.Fatal("a second app on the same data directory started")
	}
	if after := entries(t, dir); !slices.Equal(after, before) {
		t.Errorf("data directory after a refused second start = %v, want %v", after, before)
	}
	// The lock is still held: a third start is refused too.
	if a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }}); err == nil {
		a.Close()
		t.Error("a third app started: the refused start released the first one's lock")
	}
}
