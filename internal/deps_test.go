// Package internal_test enforces the import arrows of docs/ARCHITECTURE.md
// (STYLE.md rule 2): each forbidden edge fails the test with its reason.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/keyfort/keyfort"

// deps returns the transitive dependencies of pkg (go list -deps).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportArrows(t *testing.T) {
	type rule struct {
		pkg       string
		forbidden []string // exact package paths or prefixes ending in "/"
		reason    string
	}
	rules := []rule{
		{module + "/internal/kms", []string{"net/http", "database/sql", module + "/internal/storage/sqlite", module + "/internal/storage/postgres", module + "/internal/awsjson", module + "/internal/server"},
			"services know nothing of HTTP or SQL"},
		{module + "/internal/secretsmanager", []string{"net/http", "database/sql", module + "/internal/storage/sqlite", module + "/internal/storage/postgres", module + "/internal/awsjson", module + "/internal/server", module + "/internal/webhook"},
			"services know nothing of HTTP or SQL; rotation reaches the webhook through an interface"},
		{module + "/internal/cloudtrail", []string{"net/http", "database/sql", module + "/internal/storage", module + "/internal/storage/", module + "/internal/awsjson", module + "/internal/server", module + "/internal/audit"},
			"the CloudTrail service reads the trail only through its Finder, which the app adapts the store to"},
		{module + "/internal/webhook", []string{module + "/internal/secretsmanager", module + "/internal/kms", module + "/internal/storage"},
			"the webhook invoker is a leaf the app wires in"},
		{module + "/internal/envelope", []string{"net/http", "database/sql"}, "crypto packages do no I/O beyond files"},
		{module + "/internal/keymaterial", []string{"net/http", "database/sql", module + "/internal/storage"}, "crypto packages do no I/O"},
		{module + "/internal/xks", []string{"net/http", "database/sql", module + "/internal/kms"}, "the XKS Proxy API's types, shared by KMS and xksclient: no HTTP (xksclient calls the proxies)"},
		{module + "/internal/storage/sqlite", []string{module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/awsjson", module + "/internal/server"},
			"storage knows no service or codec"},
		{module + "/internal/storage/postgres", []string{module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/awsjson", module + "/internal/server"},
			"storage knows no service or codec"},
		{module + "/internal/job", []string{"net/http", "database/sql", module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/storage/sqlite", module + "/internal/storage/postgres"},
			"background jobs use only the storage contract: no service, no backend"},
		{module + "/internal/recordcache", []string{"net/http", "database/sql", module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/storage/"},
			"the read cache knows the storage contract only: the services give it their decoders"},
		{module + "/internal/listindex", []string{"net/http", "database/sql", module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/storage/"},
			"the list index knows the storage contract only: the services give it their decoders and orders"},
		{module + "/internal/awserr", []string{module + "/"}, "awserr is a leaf"},
		{module + "/internal/sensitive", []string{module + "/"}, "sensitive is a leaf"},
		{module + "/internal/operation", []string{module + "/"}, "operation is a leaf"},
		{module + "/internal/jsonread", []string{module + "/"}, "jsonread, the generated decoders' runtime, is a leaf"},
		{module + "/internal/awsjson", []string{"encoding/json"}, "requests are decoded by the generated decoders, not encoding/json"},
		{module + "/internal/durable", []string{module + "/"}, "durable is a leaf"},
		{module + "/internal/partition", []string{module + "/"}, "partition is a leaf"},
		{module + "/internal/progress", []string{module + "/"}, "progress is a leaf"},
		{module + "/internal/metrics", []string{module + "/", "net/http"}, "metrics is a leaf the services take through their Config: no HTTP (the app serves it)"},
		{module + "/internal/clock", []string{module + "/", "net/http"}, "clock is a leaf the server and the CLI share: the clock, its wire form and durations"},
		{module + "/internal/storage", []string{module + "/"}, "storage (the interface) is a leaf"},
		{module + "/internal/replication", []string{module + "/internal/kms", module + "/internal/secretsmanager", module + "/internal/storage/", "net/http", "database/sql"},
			"the replication queue knows the storage contract only: the services give it their work, KMS multi-Region keys as Secrets Manager's replicas"},
		{module + "/internal/iam", []string{module + "/"}, "iam is pure: policies in, decisions out"},
		{module + "/internal/credentials", []string{"net/http", "database/sql", module + "/internal/sigv4", module + "/internal/server", module + "/internal/storage"},
			"the credentials file is parsed, not served: no HTTP, no signing, no storage"},
		{module + "/internal/sigv4", []string{module + "/internal/credentials", module + "/internal/storage", module + "/internal/server"},
			"sigv4 reaches the credentials file only through its Credentials interface"},
		{module + "/internal/server", []string{module + "/internal/kms", module + "/internal/kms/", module + "/internal/secretsmanager", module + "/internal/secretsmanager/",
			module + "/internal/cloudtrail", module + "/internal/cloudtrail/"},
			"the server hard-codes no service: each generated package describes its own (Facts)"},
		{module + "/cmd/keyfort", []string{"github.com/aws/"}, "the AWS SDK is for tests and benchmarks only"},
		{module + "/cmd/keyfort", []string{module + "/keyforttest", module + "/internal/keyfortest", "testing"},
			"the test harnesses are for tests only"},
	}
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			if d == r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				if d == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					t.Errorf("%s imports %s: forbidden (%s)", r.pkg, d, r.reason)
				}
			}
		}
	}
}

// TestHarnessImporters checks that outside _test.go files only package
// keyforttest (the public harness, built on the internal one) imports a
// test harness, only the internal harness imports pgtest, and nothing
// imports the other test-support packages.
func TestHarnessImporters(t *testing.T) {
	harnesses := map[string]string{
		module + "/internal/keyfortest":              module + "/keyforttest",
		module + "/keyforttest":                      "",
		module + "/internal/storage/postgres/pgtest": module + "/internal/keyfortest",
		module + "/internal/operation/operationtest": "",
		module + "/internal/audit/audittest":         "",
		module + "/internal/xks/xkstest":             "",
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list %s/...: %v", module, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if allowed, ok := harnesses[imp]; ok && f[0] != allowed {
				t.Errorf("%s imports %s outside its tests: forbidden (test harnesses and test-support packages are for tests only)", f[0], imp)
			}
		}
	}
}
