// Command apigen generates Keyfort's wire API packages, internal/kms/kmsapi,
// internal/secretsmanager/smapi and internal/cloudtrail/ctapi, from
// botocore's service models pinned in tools/apigen/models (see pin.go).
//
// Usage, from anywhere inside the module:
//
//	go run ./tools/apigen [-root DIR]
//	go run ./tools/apigen -update-models [-botocore DIR] [-root DIR]
//
// or `go generate ./tools/apigen` (the go:generate line is in this file, so
// that `go generate ./...` runs the generator once).
//
// -update-models first replaces the pinned models with those of the botocore
// installed with Python (or found in -botocore DIR) and records its version.
// Without -root the generator works below the directory holding go.mod,
// found by walking up from the working directory. Every generated file is named *_gen.go; files
// matching that pattern in the output folders that the generator no longer
// produces are removed. AWS's documentation strings are not copied.
//
// A test in this package regenerates every package in memory and fails when
// the committed files are stale.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:generate go run .

// service describes one generated package.
type service struct {
	// Model and Version locate the model below botocore/data and below
	// tools/apigen/models.
	Model, Version string
	// Package is the Go package name and Dir its folder below the module root.
	Package, Dir string
	// ServiceID is the Go-friendly service id, used in NotImplemented errors.
	ServiceID string
	// MaxBody is the request body limit in bytes, as a Go constant expression.
	MaxBody string
	// MaxBodyDoc explains the limit.
	MaxBodyDoc string
	// EventSource is the service's CloudTrail eventSource.
	EventSource string
	// InternalErrorCode is the exception the service answers internal
	// errors with: one of the model's faults, or AWS's common
	// InternalFailure (HTTP 500) when the model declares no fault
	// (CloudTrail).
	InternalErrorCode string
	// MessageField is the message member of the service's exceptions when
	// the model's exceptions declare none (botocore's CloudTrail model
	// lists its exceptions without members; AWS's Smithy model, which the
	// SDKs are generated from, gives each a Message). Empty when the model
	// declares it; set, it must not contradict the model.
	MessageField string
	// NoResponseElements are the operations whose CloudTrail events have
	// responseElements null although they succeed and are not read-only
	// (cryptographic operations, secret values).
	NoResponseElements []string
	// AuditDefaults are request members CloudTrail records with a value
	// when the request leaves them out, by structure and member name, and
	// that value (AWS: "The CloudTrail log entry for a Decrypt operation
	// always includes the encryptionAlgorithm in the requestParameters
	// even if the encryption algorithm wasn't specified in the request").
	AuditDefaults map[string]map[string]string
}

// services lists the packages apigen writes.
var services = []service{
	{
		Model: "kms", Version: "2014-11-01",
		Package: "kmsapi", Dir: "internal/kms/kmsapi",
		ServiceID: "KMS",
		MaxBody:   "128 << 10", MaxBodyDoc: "128 KiB: KMS plaintexts are at most 4096 bytes and AWS limits key policies to 32 KiB",
		EventSource: "kms.amazonaws.com", InternalErrorCode: "KMSInternalException",
		NoResponseElements: []string{"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
			"GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
			"GenerateRandom", "Sign", "Verify", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
			"GetPublicKey", "GetParametersForImport"},
		AuditDefaults: map[string]map[string]string{"DecryptInput": {"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}},
	},
	{
		Model: "secretsmanager", Version: "2017-10-17",
		Package: "smapi", Dir: "internal/secretsmanager/smapi",
		ServiceID: "SecretsManager",
		MaxBody:   "1 << 20", MaxBodyDoc: "1 MiB: secret values are at most 65536 bytes, several per batch",
		EventSource: "secretsmanager.amazonaws.com", InternalErrorCode: "InternalServiceError",
		NoResponseElements: []string{"GetSecretValue", "BatchGetSecretValue", "GetRandomPassword"},
	},
	{
		Model: "cloudtrail", Version: "2013-11-01",
		Package: "ctapi", Dir: "internal/cloudtrail/ctapi",
		ServiceID: "CloudTrail",
		MaxBody:   "64 << 10", MaxBodyDoc: "64 KiB: a LookupEvents request is a few hundred bytes (one lookup attribute of at most 2000 characters)",
		EventSource: "cloudtrail.amazonaws.com", InternalErrorCode: "InternalFailure",
		MessageField: "Message",
	},
}

func main() {
	update := flag.Bool("update-models", false, "refresh the pinned models from the installed botocore first")
	botocoreDir := flag.String("botocore", "", "with -update-models, the botocore package `directory` (default: ask python3)")
	root := flag.String("root", "", "module root `directory` (default: the folder of go.mod above the working directory)")
	flag.Parse()
	if err := run(*update, *botocoreDir, *root); err != nil {
		fmt.Fprintln(os.Stderr, "apigen:", err)
		os.Exit(1)
	}
}

func run(update bool, botocoreDir, root string) error {
	if root == "" {
		r, err := moduleRoot()
		if err != nil {
			return err
		}
		root = r
	}
	if update {
		if botocoreDir == "" {
			dir, err := locateBotocore()
			if err != nil {
				return err
			}
			botocoreDir = dir
		}
		if err := updateModels(botocoreDir, root); err != nil {
			return err
		}
	}
	for _, svc := range services {
		files, err := generateService(root, svc)
		if err != nil {
			return err
		}
		if err := writeFiles(filepath.Join(root, svc.Dir), files); err != nil {
			return err
		}
	}
	return nil
}

// generateService loads the pinned model of svc below the module root and
// returns its generated files by base name.
func generateService(root string, svc service) (map[string][]byte, error) {
	m, err := loadModel(pinnedModelPath(root, svc.Model, svc.Version))
	if err != nil {
		return nil, err
	}
	return generate(m, svc)
}

// writeFiles writes files into dir, skipping unchanged ones, and removes
// stale *_gen.go files.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "*_gen.go"))
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	for _, p := range old {
		if _, ok := files[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove stale %s: %w", p, err)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, files[n]) {
			continue
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// moduleRoot walks up from the working directory to the folder with go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// genError carries a generator failure through panics inside the emitters;
// generate recovers it. Anything else is a bug and keeps panicking.
type genError struct{ err error }

// failf stops generation with a formatted error.
func failf(format string, args ...any) {
	panic(genError{fmt.Errorf(format, args...)})
}

// lowerFirst returns s with its first letter in lower case, as AWS spells
// member names in validation paths.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
