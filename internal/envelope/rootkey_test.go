package envelope

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func keyBytes(fill byte) []byte { return bytes.Repeat([]byte{fill}, RootKeySize) }

func wantID(t *testing.T, fill byte) [8]byte {
	t.Helper()
	k, err := NewRootKey(keyBytes(fill))
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func TestLoadRootKey(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(keyBytes(7))
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) RootKeyOptions
		wantFil byte   // expected key fill byte
		wantErr string // substring; empty means success
	}{
		{
			name: "file raw",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.bin")
				writeFile(t, p, keyBytes(7), 0o600)
				return RootKeyOptions{File: p, EnvBase64: base64.StdEncoding.EncodeToString(keyBytes(8)), DataDir: dir}
			},
			wantFil: 7,
		},
		{
			name: "file base64 with newline",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.txt")
				writeFile(t, p, []byte(b64+"\n"), 0o644) // a user-supplied file's mode is the user's choice
				return RootKeyOptions{File: p}
			},
			wantFil: 7,
		},
		{
			name: "file base64 with CRLF",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.txt")
				writeFile(t, p, []byte(b64+"\r\n"), 0o600)
				return RootKeyOptions{File: p}
			},
			wantFil: 7,
		},
		{
			name: "env",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				return RootKeyOptions{EnvBase64: b64, DataDir: dir}
			},
			wantFil: 7,
		},
		{
			name: "file missing",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				return RootKeyOptions{File: filepath.Join(dir, "nope"), EnvBase64: b64}
			},
			wantErr: "root key file",
		},
		{
			name: "file wrong length raw",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.bin")
				writeFile(t, p, keyBytes(7)[:31], 0o600)
				return RootKeyOptions{File: p}
			},
			wantErr: "want 32 raw bytes or base64 of 32 bytes",
		},
		{
			name: "file base64 of 16 bytes",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.txt")
				writeFile(t, p, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))+"\n"), 0o600)
				return RootKeyOptions{File: p}
			},
			wantErr: "decodes to 16 bytes, want 32",
		},
		{
			name: "file too large",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				p := filepath.Join(dir, "k.txt")
				writeFile(t, p, bytes.Repeat([]byte("A"), 4096), 0o600)
				return RootKeyOptions{File: p}
			},
			wantErr: "larger than",
		},
		{
			name: "env wrong length",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				return RootKeyOptions{EnvBase64: base64.StdEncoding.EncodeToString(make([]byte, 31))}
			},
			wantErr: "KEYFORT_ROOT_KEY: decodes to 31 bytes, want 32",
		},
		{
			name: "env not base64",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				return RootKeyOptions{EnvBase64: "not base64!"}
			},
			wantErr: "KEYFORT_ROOT_KEY: not valid standard base64",
		},
		{
			name: "data dir wrong length",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				writeFile(t, filepath.Join(dir, RootKeyFileName), []byte("QUJD\n"), 0o600)
				return RootKeyOptions{DataDir: dir}
			},
			wantErr: "decodes to 3 bytes, want 32",
		},
		{
			name: "nothing",
			setup: func(t *testing.T, dir string) RootKeyOptions {
				return RootKeyOptions{}
			},
			wantErr: "no root key file",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.setup(t, t.TempDir())
			k, created, err := LoadRootKey(opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadRootKey() error = %v, want containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), b64) {
					t.Errorf("LoadRootKey() error %q contains the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadRootKey() = %v, want nil", err)
			}
			if created {
				t.Errorf("LoadRootKey() created = true, want false")
			}
			if k.ID() != wantID(t, tc.wantFil) {
				t.Errorf("LoadRootKey() key id = %x, want %x", k.ID(), wantID(t, tc.wantFil))
			}
		})
	}
}

func TestLoadRootKeyGenerated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, created, err := LoadRootKey(RootKeyOptions{DataDir: dir, Rand: &counterReader{}})
	if err != nil {
		t.Fatalf("LoadRootKey(new dir) = %v", err)
	}
	if !created {
		t.Errorf("LoadRootKey(new dir) created = false, want true")
	}
	path := filepath.Join(dir, RootKeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("root.key mode = %04o, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	want := make([]byte, 32)
	for i := range want {
		want[i] = byte(i) // counterReader
	}
	if got := string(text); got != base64.StdEncoding.EncodeToString(want)+"\n" {
		t.Errorf("root.key = %q, want base64 of the generated key and a newline", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir has %d entries, want only root.key (temp file left behind?)", len(entries))
	}

	k2, created, err := LoadRootKey(RootKeyOptions{DataDir: dir, Rand: failReader{}})
	if err != nil {
		t.Fatalf("LoadRootKey(again) = %v", err)
	}
	if created {
		t.Errorf("LoadRootKey(again) created = true, want false")
	}
	if k1.ID() != k2.ID() {
		t.Errorf("reloaded key id = %x, want %x", k2.ID(), k1.ID())
	}
}

func TestLoadRootKeyBadPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		dir := t.TempDir()
		path := filepath.Join(dir, RootKeyFileName)
		writeFile(t, path, []byte(base64.StdEncoding.EncodeToString(keyBytes(1))+"\n"), mode)
		_, _, err := LoadRootKey(RootKeyOptions{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), "group or others") {
			t.Errorf("LoadRootKey(root.key mode %04o) = %v, want permission error", mode, err)
		}
	}
}

func TestLoadRootKeyGenerateFails(t *testing.T) {
	_, _, err := LoadRootKey(RootKeyOptions{DataDir: t.TempDir(), Rand: failReader{}})
	if err == nil {
		t.Errorf("LoadRootKey(failing rand) = nil, want error")
	}
}

func TestWriteRootKeyFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, RootKeyFileName)
	k1, _ := NewRootKey(keyBytes(1))
	k2, _ := NewRootKey(keyBytes(2))
	if err := WriteRootKeyFile(path, k1); err != nil {
		t.Fatalf("WriteRootKeyFile: %v", err)
	}
	if err := WriteRootKeyFile(path, k2); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteRootKeyFile(existing) = %v, want fs.ErrExist", err)
	}
	k, _, err := LoadRootKey(RootKeyOptions{DataDir: dir})
	if err != nil || k.ID() != k1.ID() {
		t.Errorf("LoadRootKey after second write = %v, %v, want the first key", k, err)
	}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
}

func TestLoadRootKeyNoGenerate(t *testing.T) {
	dir := t.TempDir()
	_, created, err := LoadRootKey(RootKeyOptions{DataDir: dir, NoGenerate: true})
	if !errors.Is(err, fs.ErrNotExist) || created {
		t.Fatalf("LoadRootKey(NoGenerate, empty dir) = %v, %v, want fs.ErrNotExist", created, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("LoadRootKey(NoGenerate) wrote %v into the data directory", entries)
	}
	k, created, err := LoadRootKey(RootKeyOptions{DataDir: dir})
	if err != nil || !created {
		t.Fatalf("LoadRootKey(generate) = %v, %v", created, err)
	}
	again, created, err := LoadRootKey(RootKeyOptions{DataDir: dir, NoGenerate: true})
	if err != nil || created || again.ID() != k.ID() {
		t.Errorf("LoadRootKey(NoGenerate, existing) = %v, %v, %v, want %v", again, created, err, k)
	}
}
