package envelope

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/keyfort/keyfort/internal/durable"
)

// RootKeySize is the length of a root key in bytes.
const RootKeySize = 32

// RootKeyFileName is the name of the generated root key file inside the data
// directory.
const RootKeyFileName = "root.key"

// maxRootKeyFile bounds how much of a root key file is read: base64 of 32
// bytes is 44 characters, plus a line ending and some whitespace.
const maxRootKeyFile = 256

// RootKey is the 32-byte key that seals every record at rest. Its bytes
// cannot be read back; it prints as its id only.
type RootKey struct {
	key [RootKeySize]byte
	id  [8]byte
}

// NewRootKey returns the root key made of b, which must be exactly 32 bytes.
// b is copied; the caller may zero it afterwards.
func NewRootKey(b []byte) (*RootKey, error) {
	if len(b) != RootKeySize {
		return nil, fmt.Errorf("envelope: root key is %d bytes, want %d", len(b), RootKeySize)
	}
	k := &RootKey{}
	copy(k.key[:], b)
	sum := sha256.Sum256(k.key[:])
	copy(k.id[:], sum[:8])
	clear(sum[:])
	return k, nil
}

// GenerateRootKey returns a new random root key read from r (nil means
// crypto/rand.Reader).
func GenerateRootKey(r io.Reader) (*RootKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [RootKeySize]byte
	defer clear(b[:])
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("envelope: generate root key: %w", err)
	}
	return NewRootKey(b[:])
}

// ID returns the root key's id: the first 8 bytes of SHA-256 of the key.
func (k *RootKey) ID() [8]byte { return k.id }

// String returns "RootKey(<hex id>)"; it never shows the key.
func (k *RootKey) String() string { return "RootKey(" + hex.EncodeToString(k.id[:]) + ")" }

// GoString is String, so that %#v does not print the key either.
func (k *RootKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that every verb prints String.
func (k *RootKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer and logs the id only.
func (k *RootKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// RootKeyOptions says where LoadRootKey finds the root key.
type RootKeyOptions struct {
	// File is the path given by --root-key-file: 32 raw bytes, or the
	// standard base64 of 32 bytes with optional surrounding whitespace (a
	// trailing newline). It wins over everything else.
	File string
	// EnvBase64 is the value of KEYFORT_ROOT_KEY (standard base64 of 32
	// bytes), passed in by the caller. It is used when File is empty.
	EnvBase64 string
	// DataDir is the data directory. When File and EnvBase64 are both empty,
	// <DataDir>/root.key is read, or generated if it does not exist.
	DataDir string
	// Rand is the source for a generated key (nil means crypto/rand.Reader).
	Rand io.Reader
	// NoGenerate, when set, makes a missing <DataDir>/root.key an error
	// wrapping fs.ErrNotExist instead of generating one: the caller knows
	// that data sealed under some root key already exists.
	NoGenerate bool
}

// LoadRootKey loads the root key from o.File, else from o.EnvBase64, else
// from <o.DataDir>/root.key, which it generates (base64 text, mode 0600,
// written atomically) when it does not exist, unless o.NoGenerate is set;
// created reports that. A
// root.key that group or others may access is an error. Errors name the
// source and the problem, never the key bytes.
func LoadRootKey(o RootKeyOptions) (key *RootKey, created bool, err error) {
	switch {
	case o.File != "":
		b, err := readSmallFile(o.File)
		if err != nil {
			return nil, false, fmt.Errorf("envelope: root key file %q: %w", o.File, err)
		}
		defer clear(b)
		k, err := parseRootKeyFile(b)
		if err != nil {
			return nil, false, fmt.Errorf("envelope: root key file %q: %w", o.File, err)
		}
		return k, false, nil
	case o.EnvBase64 != "":
		k, err := parseRootKeyBase64([]byte(o.EnvBase64))
		if err != nil {
			return nil, false, fmt.Errorf("envelope: KEYFORT_ROOT_KEY: %w", err)
		}
		return k, false, nil
	case o.DataDir != "" && o.NoGenerate:
		k, err := loadDataDirKey(filepath.Join(o.DataDir, RootKeyFileName))
		if err != nil {
			return nil, false, fmt.Errorf("envelope: root key: %w", err)
		}
		return k, false, nil
	case o.DataDir != "":
		return loadOrCreate(o.DataDir, o.Rand)
	default:
		return nil, false, errors.New("envelope: root key: no root key file, no KEYFORT_ROOT_KEY and no data directory")
	}
}

func loadOrCreate(dir string, r io.Reader) (*RootKey, bool, error) {
	path := filepath.Join(dir, RootKeyFileName)
	k, err := loadDataDirKey(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("envelope: root key: create data directory: %w", err)
	}
	k, err = GenerateRootKey(r)
	if err != nil {
		return nil, false, err
	}
	if err := WriteRootKeyFile(path, k); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use that one.
			k, err := loadDataDirKey(path)
			return k, false, err
		}
		return nil, false, err
	}
	return k, true, nil
}

// loadDataDirKey reads a generated root.key. It returns an error wrapping
// fs.ErrNotExist if the file does not exist.
func loadDataDirKey(path string) (*RootKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("envelope: root key file %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("envelope: root key file %q: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("envelope: root key file %q: mode %04o lets group or others access it, want 0600 (chmod 600 %s)", path, perm, path)
	}
	b, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("envelope: root key file %q: %w", path, err)
	}
	defer clear(b)
	k, err := parseRootKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("envelope: root key file %q: %w", path, err)
	}
	return k, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootKeyFile+1))
	if err != nil {
		clear(b)
		return nil, err
	}
	if len(b) > maxRootKeyFile {
		clear(b)
		return nil, fmt.Errorf("file is larger than %d bytes; want 32 raw bytes or base64 of 32 bytes", maxRootKeyFile)
	}
	return b, nil
}

// parseRootKeyFile accepts 32 raw bytes or base64 text.
func parseRootKeyFile(b []byte) (*RootKey, error) {
	if len(b) == RootKeySize {
		return NewRootKey(b)
	}
	k, err := parseRootKeyBase64(b)
	if err != nil {
		return nil, fmt.Errorf("%w (want 32 raw bytes or base64 of 32 bytes)", err)
	}
	return k, nil
}

func parseRootKeyBase64(text []byte) (*RootKey, error) {
	text = bytes.TrimSpace(text)
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	defer clear(buf)
	n, err := base64.StdEncoding.Decode(buf, text)
	if err != nil {
		// The decoder's error carries only an offset, but say it plainly.
		return nil, errors.New("not valid standard base64")
	}
	if n != RootKeySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", n, RootKeySize)
	}
	return NewRootKey(buf[:n])
}

// WriteRootKeyFile writes k as base64 text with a trailing newline to path,
// mode 0600, atomically: a temporary file in the same directory is written
// and fsynced, then linked into place (never replacing an existing file) and
// the directory is fsynced. If path already exists the error wraps
// fs.ErrExist.
func WriteRootKeyFile(path string, k *RootKey) error {
	dir := filepath.Dir(path)
	text := make([]byte, base64.StdEncoding.EncodedLen(RootKeySize)+1)
	defer clear(text)
	base64.StdEncoding.Encode(text, k.key[:])
	text[len(text)-1] = '\n'

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("envelope: write root key %q: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once linked and removed, or renamed
	if err := writeSyncClose(tmp, text); err != nil {
		return fmt.Errorf("envelope: write root key %q: %w", path, err)
	}
	// Link fails if path exists, so an existing root key is never replaced.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("envelope: write root key %q: %w", path, fs.ErrExist)
		}
		// File systems without hard links: check, then rename.
		if _, serr := os.Lstat(path); serr == nil {
			return fmt.Errorf("envelope: write root key %q: %w", path, fs.ErrExist)
		}
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("envelope: write root key %q: %w", path, err)
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("envelope: write root key %q: sync directory: %w", path, err)
	}
	return nil
}

func writeSyncClose(f *os.File, b []byte) error {
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
