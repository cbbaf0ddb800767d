package credentials

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/identity"
)

const allowKMS = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

const example = `
principals:
  - arn: arn:aws:iam::111122223333:user/alice
    access_keys:
      - id: AKIAALICE0000000001
        secret: alice-secret-key
    tags: {team: blue}
    policies:
      - '` + allowKMS + `'
  - arn: arn:aws:iam::111122223333:role/ops/deployer
    access_keys:
      - id: ASIADEPLOYER000001
        secret: deployer-secret
        session_token: deployer-token
  - arn: arn:aws:iam::444455556666:root
    access_keys:
      - id: AKIAROOT0000000001
        secret: root-secret
      - id: AKIAROOT0000000002
        secret: root-secret-2
`

func TestParseExample(t *testing.T) {
	s, err := Parse(strings.NewReader(example))
	if err != nil {
		t.Fatalf("Parse(example) = %v", err)
	}
	if s.Principals() != 3 || s.Keys() != 4 {
		t.Errorf("Parse(example) has %d principals and %d keys, want 3 and 4", s.Principals(), s.Keys())
	}

	alice, ok := s.Lookup("AKIAALICE0000000001")
	if !ok {
		t.Fatal("Lookup(alice) = false")
	}
	if alice.Secret.Reveal() != "alice-secret-key" || alice.SessionToken != "" {
		t.Errorf("alice secret/token = %q/%q", alice.Secret.Reveal(), alice.SessionToken.Reveal())
	}
	c := alice.Caller()
	const aliceARN = "arn:aws:iam::111122223333:user/alice"
	if c.Account != "111122223333" || c.ARN != aliceARN || c.Type != identity.TypeIAMUser || c.UserName != "alice" ||
		c.AccessKeyID != "AKIAALICE0000000001" || c.Region != "" || c.Tags["team"] != "blue" || len(c.Policies) != 1 {
		t.Errorf("alice caller = %+v", c)
	}
	p := c.Principal
	if p.ARN != aliceARN || p.PrincipalARN != aliceARN || p.Account != "111122223333" || p.Root ||
		!strings.HasPrefix(p.UserID, "AIDA") || len(p.UserID) != 20 || strings.Trim(p.UserID, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Errorf("alice principal = %+v", p)
	}

	dep, ok := s.Lookup("ASIADEPLOYER000001")
	if !ok {
		t.Fatal("Lookup(deployer) = false")
	}
	if dep.SessionToken.Reveal() != "deployer-token" {
		t.Errorf("deployer token = %q", dep.SessionToken.Reveal())
	}
	c = dep.Caller()
	const session = "arn:aws:sts::111122223333:assumed-role/deployer/ASIADEPLOYER000001"
	if c.ARN != session || c.Type != identity.TypeAssumedRole || c.UserName != "" || c.Tags != nil || len(c.Policies) != 0 {
		t.Errorf("deployer caller = %+v", c)
	}
	p = c.Principal
	if p.ARN != session || p.PrincipalARN != "arn:aws:iam::111122223333:role/ops/deployer" ||
		!strings.HasPrefix(p.UserID, "AROA") || !strings.HasSuffix(p.UserID, ":ASIADEPLOYER000001") || len(p.UserID) != 20+1+18 {
		t.Errorf("deployer principal = %+v", p)
	}

	root, ok := s.Lookup("AKIAROOT0000000002")
	if !ok {
		t.Fatal("Lookup(root) = false")
	}
	want := identity.Root("444455556666", "", "AKIAROOT0000000002")
	if got := root.Caller(); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("root caller = %+v, want %+v", got, want)
	}

	if _, ok := s.Lookup("AKIAUNKNOWN0000001"); ok {
		t.Error("Lookup(unknown) = true")
	}
	if _, _, _, ok := s.Credential("AKIAUNKNOWN0000001"); ok {
		t.Error("Credential(unknown) = true")
	}
	secret, token, caller, ok := s.Credential("ASIADEPLOYER000001")
	if !ok || secret.Reveal() != "deployer-secret" || token.Reveal() != "deployer-token" || caller.ARN != session {
		t.Errorf("Credential(deployer) = %q, %q, %+v, %v", secret.Reveal(), token.Reveal(), caller, ok)
	}
}

func TestUniqueIDs(t *testing.T) {
	s, err := Parse(strings.NewReader(`
principals:
  - arn: arn:aws:iam::111122223333:user/a
    access_keys: [{id: AKIA000000000000000A, secret: x}]
  - arn: arn:aws:iam::111122223333:user/b
    access_keys: [{id: AKIA000000000000000B, secret: x}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Lookup("AKIA000000000000000A")
	b, _ := s.Lookup("AKIA000000000000000B")
	if a.Caller().Principal.UserID == b.Caller().Principal.UserID {
		t.Errorf("users a and b share the unique id %s", a.Caller().Principal.UserID)
	}
	s2, _ := Parse(strings.NewReader(`
principals:
  - arn: arn:aws:iam::111122223333:user/a
    access_keys: [{id: AKIA000000000000000C, secret: y}]
`))
	c, _ := s2.Lookup("AKIA000000000000000C")
	if a.Caller().Principal.UserID != c.Caller().Principal.UserID {
		t.Errorf("the unique id of user a changed between files: %s, %s", a.Caller().Principal.UserID, c.Caller().Principal.UserID)
	}
}

func TestCallerIsACopy(t *testing.T) {
	s, err := Parse(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := s.Lookup("AKIAALICE0000000001")
	c := k.Caller()
	c.Region, c.SourceIP, c.RequestID = "us-east-1", "192.0.2.1", "r"
	if c2 := k.Caller(); c2 == c || c2.Region != "" || c2.SourceIP != "" || c2.RequestID != "" {
		t.Errorf("Caller() after changing a previous one = %+v, want a fresh copy", c2)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	s, err := Parse(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := s.Lookup("ASIADEPLOYER000001")
	if out := fmt.Sprintf("%v %+v", k, *k); strings.Contains(out, "deployer-secret") || strings.Contains(out, "deployer-token") {
		t.Errorf("printing a Key shows its secret: %s", out)
	}
}

// principal is one principals entry with the given lines under it.
func principal(arn string, lines ...string) string {
	return "  - arn: " + arn + "\n" + indent(lines)
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

const key1 = "access_keys: [{id: AKIAEXAMPLE0000001, secret: s}]"

func TestParseErrors(t *testing.T) {
	const user = "arn:aws:iam::111122223333:user/bob"
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	tests := []struct {
		name string
		file string
		want string // the whole error
	}{
		{"empty file", "", "credentials: the file lists no principals"},
		{"no principals", "principals: []\n", "credentials: the file lists no principals"},
		{"not yaml", "principals: [\n", "credentials: not valid YAML: line 1: did not find expected node content"},
		{"two documents", "principals:\n" + principal(user, key1) + "---\nprincipals: []\n",
			"credentials: the file must hold one YAML document"},
		{"unknown top-level field", "users: []\n", `credentials: line 1: unknown field "users"`},
		{"unknown principal field", "principals:\n" + principal(user, key1, "group: admins"),
			`credentials: line 4: unknown field "group"`},
		{"unknown key field", "principals:\n" + principal(user, "access_keys: [{id: AKIAEXAMPLE0000001, secret: s, expires: 2030}]"),
			`credentials: line 3: unknown field "expires"`},
		{"principals not a list", "principals: {a: b}\n", "credentials: line 1: found a mapping where a list is expected"},
		{"policies not a list", "principals:\n" + principal(user, key1, "policies: "+"'"+allowKMS+"'"),
			"credentials: line 4: found a string where a list is expected"},
		{"tags not a mapping", "principals:\n" + principal(user, key1, "tags: [a]"),
			"credentials: line 4: found a list where a mapping is expected"},

		{"missing arn", "principals:\n  - " + key1 + "\n", `credentials: principals[0] (""): arn: is required`},
		{"bad arn", "principals:\n" + principal("arn:aws:iam::111122223333:group/admins", key1),
			"credentials: principals[0] (arn:aws:iam::111122223333:group/admins): arn: is not an account root (arn:aws:iam::<12 digits>:root), IAM user (arn:aws:iam::<account>:user/[path/]name) or IAM role (arn:aws:iam::<account>:role/[path/]name)"},
		{"short account", "principals:\n" + principal("arn:aws:iam::1111:root", key1),
			"credentials: principals[0] (arn:aws:iam::1111:root): arn: is not an account root"},
		{"unknown partition", "principals:\n" + principal("arn:aws-iso:iam::111122223333:root", key1),
			"credentials: principals[0] (arn:aws-iso:iam::111122223333:root): arn: is not an account root"},
		{"sts arn", "principals:\n" + principal("arn:aws:sts::111122223333:assumed-role/r/s", key1),
			"credentials: principals[0] (arn:aws:sts::111122223333:assumed-role/r/s): arn: is not an account root"},
		{"user without name", "principals:\n" + principal("arn:aws:iam::111122223333:user/", key1),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/): arn: is not an account root"},
		{"empty path segment", "principals:\n" + principal("arn:aws:iam::111122223333:user/a//bob", key1),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/a//bob): arn: the user path has an empty segment"},
		{"bad user name", "principals:\n" + principal("arn:aws:iam::111122223333:user/path/b!ob", key1),
			`credentials: principals[0] (arn:aws:iam::111122223333:user/path/b!ob): arn: the user name "b!ob" is not 1 to 64 characters of letters, digits and +=,.@_-`},
		{"long role name", "principals:\n" + principal("arn:aws:iam::111122223333:role/"+long('r', 65), key1),
			"is not 1 to 64 characters of letters, digits and +=,.@_-"},
		{"long path", "principals:\n" + principal("arn:aws:iam::111122223333:user/"+long('p', 511)+"/bob", key1),
			"arn: the path is longer than 512 characters"},
		{"duplicate principal", "principals:\n" + principal(user, key1) + principal(user, "access_keys: [{id: AKIAEXAMPLE0000002, secret: s}]"),
			"credentials: principals[1] (arn:aws:iam::111122223333:user/bob): is listed twice (also principals[0])"},
		{"root with policies", "principals:\n" + principal("arn:aws:iam::111122223333:root", key1, "policies: ['"+allowKMS+"']"),
			"credentials: principals[0] (arn:aws:iam::111122223333:root): policies: the account root cannot have policies (AWS attaches no policy to the root user; its account allows it everything)"},
		{"root with tags", "principals:\n" + principal("arn:aws:iam::111122223333:root", key1, "tags: {a: b}"),
			"credentials: principals[0] (arn:aws:iam::111122223333:root): tags: the account root cannot have tags (AWS cannot tag the root user)"},

		{"no access keys", "principals:\n" + principal(user),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): access_keys: at least one access key is required"},
		{"short key id", "principals:\n" + principal(user, "access_keys: [{id: AKIA1, secret: s}]"),
			`credentials: principals[0] (arn:aws:iam::111122223333:user/bob): access_keys[0]: id "AKIA1" is not 16 to 128 characters of A-Z and 0-9`},
		{"lower-case key id", "principals:\n" + principal(user, "access_keys: [{id: akiaexample0000001, secret: s}]"),
			`access_keys[0]: id "akiaexample0000001" is not 16 to 128 characters of A-Z and 0-9`},
		{"long key id", "principals:\n" + principal(user, "access_keys: [{id: "+long('A', 129)+", secret: s}]"),
			`access_keys[0]: id "` + long('A', 64) + `..." is not 16 to 128 characters of A-Z and 0-9`},
		{"missing key id", "principals:\n" + principal(user, "access_keys: [{secret: s}]"),
			`access_keys[0]: id "" is not 16 to 128 characters of A-Z and 0-9`},
		{"role key id too long for a session name", "principals:\n" + principal("arn:aws:iam::111122223333:role/r", "access_keys: [{id: "+long('A', 65)+", secret: s}]"),
			"is longer than 64 characters, the longest role session name (a role's access key names its session)"},
		{"empty secret", "principals:\n" + principal(user, "access_keys: [{id: AKIAEXAMPLE0000001}]"),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): access_keys[0]: secret: is required"},
		{"duplicate key in one principal", "principals:\n" + principal(user, "access_keys: [{id: AKIAEXAMPLE0000001, secret: s}, {id: AKIAEXAMPLE0000001, secret: t}]"),
			`credentials: principals[0] (arn:aws:iam::111122223333:user/bob): access_keys[1]: id "AKIAEXAMPLE0000001" is listed twice`},
		{"duplicate key across principals", "principals:\n" + principal(user, key1) + principal("arn:aws:iam::111122223333:root", key1),
			`credentials: principals[1] (arn:aws:iam::111122223333:root): access_keys[0]: id "AKIAEXAMPLE0000001" is listed twice`},

		{"long tag key", "principals:\n" + principal(user, key1, "tags: {"+long('k', 129)+": v}"),
			`credentials: principals[0] (arn:aws:iam::111122223333:user/bob): tags: key "` + long('k', 64) + `..." is not 1 to 128 characters`},
		{"empty tag key", "principals:\n" + principal(user, key1, `tags: {"": v}`),
			`tags: key "" is not 1 to 128 characters`},
		{"long tag value", "principals:\n" + principal(user, key1, "tags: {k: "+long('v', 257)+"}"),
			`credentials: principals[0] (arn:aws:iam::111122223333:user/bob): tags: the value of "k" is longer than 256 characters`},

		{"policy syntax", "principals:\n" + principal(user, key1, `policies: ['{"Version":']`),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): policies[0]: Fix the JSON syntax error at index "},
		{"empty policy", "principals:\n" + principal(user, key1, `policies: ['']`),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): policies[0]: is empty"},
		{"policy finding", "principals:\n" + principal(user, key1,
			`policies: ['{"Version":"2012-10-17","Statement":[{"Action":"kms:*","Resource":"*"}]}']`),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): policies[0]: MISSING_EFFECT: "},
		{"identity policy with a principal", "principals:\n" + principal(user, key1,
			`policies: ['{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}']`),
			"credentials: principals[0] (arn:aws:iam::111122223333:user/bob): policies[0]: INVALID_POLICY_ELEMENT: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tt.file))
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil, want error %q", tt.file, s, tt.want)
			}
			got := err.Error()
			if strings.Contains(got, "\n") {
				t.Errorf("Parse(%q) error is not one line: %q", tt.file, got)
			}
			if got != tt.want && !(strings.HasPrefix(got, tt.want) || !strings.HasPrefix(tt.want, "credentials: ") && strings.Contains(got, tt.want)) {
				t.Errorf("Parse(%q) = %q, want %q", tt.file, got, tt.want)
			}
			if strings.Contains(got, "secret: s") {
				t.Errorf("Parse(%q) error quotes a secret: %q", tt.file, got)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	// At the limits: 16- and 128-character ids, 128-character tag keys,
	// 256-character values, 64-character names, a role key of 64.
	file := "principals:\n" +
		principal("arn:aws:iam::111122223333:user/"+strings.Repeat("u", 64),
			"access_keys: [{id: "+strings.Repeat("A", 16)+", secret: s}, {id: "+strings.Repeat("B", 128)+", secret: s}]",
			"tags: {"+strings.Repeat("k", 128)+": "+strings.Repeat("v", 256)+", empty: ''}") +
		principal("arn:aws:iam::111122223333:role/a/b/"+strings.Repeat("r", 64),
			"access_keys: [{id: "+strings.Repeat("C", 64)+", secret: s}]")
	s, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatalf("Parse(limits) = %v", err)
	}
	if s.Keys() != 3 {
		t.Errorf("Parse(limits) has %d keys, want 3", s.Keys())
	}
}

func TestParseTooLarge(t *testing.T) {
	big := strings.NewReader("# " + strings.Repeat("x", MaxFileSize) + "\n")
	if _, err := Parse(big); err == nil || err.Error() != fmt.Sprintf("credentials: the file is larger than %d bytes", MaxFileSize) {
		t.Errorf("Parse(%d bytes) = %v", MaxFileSize+3, err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(path); err != nil || s.Keys() != 4 {
		t.Fatalf("Load(%s) = %v, %v", path, s, err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); err == nil || err.Error() != "credentials: cannot open "+missing+": no such file or directory" {
		t.Errorf("Load(missing) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add("principals:\n" + principal("arn:aws:iam::111122223333:user/bob", key1, "tags: {a: b}"))
	f.Add("principals: [{arn: 'arn:aws:iam::111122223333:role/r', access_keys: [{id: AKIAEXAMPLE0000001, secret: s, session_token: t}]}]")
	f.Add("principals:\n  - &a {arn: x}\n  - *a\n")
	f.Add("principals: !!map {}\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, file string) {
		s, err := Parse(strings.NewReader(file))
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "credentials: ") {
				t.Fatalf("Parse(%q) error %q is not one line starting credentials:", file, msg)
			}
			return
		}
		if s.Principals() == 0 || s.Keys() == 0 {
			t.Fatalf("Parse(%q) accepted a file without principals or keys", file)
		}
		for id, k := range s.keys {
			c := k.Caller()
			if !isKeyID(id) || k.Secret == "" || c.AccessKeyID != id || c.Account == "" || c.ARN == "" || c.Principal.UserID == "" {
				t.Fatalf("Parse(%q) accepted key %s with caller %+v", file, id, c)
			}
		}
	})
}

// TestChinaPartition: principals of the aws-cn partition keep it in their
// ARNs, a role's session ARN included.
func TestChinaPartition(t *testing.T) {
	s, err := Parse(strings.NewReader(`
principals:
  - arn: arn:aws-cn:iam::111122223333:root
    access_keys: [{id: AKIACNROOT00000001, secret: x}]
  - arn: arn:aws-cn:iam::111122223333:role/r
    access_keys: [{id: ASIACNROLE00000001, secret: x, session_token: t}]
`))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := s.Lookup("AKIACNROOT00000001")
	if c := root.Caller(); c.ARN != "arn:aws-cn:iam::111122223333:root" || !c.Principal.Root ||
		c.Principal.ARN != c.ARN || c.Principal.PrincipalARN != c.ARN {
		t.Errorf("root caller = %+v", c)
	}
	role, _ := s.Lookup("ASIACNROLE00000001")
	if c := role.Caller(); c.ARN != "arn:aws-cn:sts::111122223333:assumed-role/r/ASIACNROLE00000001" ||
		c.Principal.PrincipalARN != "arn:aws-cn:iam::111122223333:role/r" {
		t.Errorf("role caller = %+v", c)
	}
}
