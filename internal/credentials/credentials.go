// Package credentials reads the credentials file of strict authentication:
// the principals (account roots, IAM users and IAM roles) that may call
// Keyfort, their access keys, tags and identity-based policies.
//
// The file is YAML:
//
//	principals:
//	  - arn: arn:aws:iam::111122223333:user/alice   # user, role or the account root (...:root)
//	    access_keys:
//	      - id: AKIAALICE0000000001
//	        secret: alice-secret-key
//	        session_token: optional-token            # requests must then carry X-Amz-Security-Token
//	    tags: {team: blue}                            # aws:PrincipalTag/<key>
//	    policies:                                     # identity-based policies, IAM JSON
//	      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}'
//
// [Parse] validates everything and refuses the whole file on the first
// problem, with a one-line error naming the entry. The resulting [Store]
// answers which secret, session token and caller belong to an access key;
// sigv4.Strict verifies signatures with it. This package does no HTTP and
// no signing, and it keeps no state beyond the Store it returns (reloading
// a changed file is the app's business).
package credentials

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// MaxFileSize bounds the credentials file.
const MaxFileSize = 8 << 20

// Limits of the file's values.
const (
	MinKeyIDLen  = 16
	MaxKeyIDLen  = 128
	MaxTagKeyLen = 128
	MaxTagValLen = 256
	// MaxSessionNameLen is the longest role session name; the access key
	// id of a role's key is the session name.
	MaxSessionNameLen = 64
)

// Key is one access key of the file.
type Key struct {
	// ID is the access key id.
	ID string
	// Secret is the secret access key.
	Secret sensitive.String
	// SessionToken is the session token that requests signed with this key
	// must carry in X-Amz-Security-Token; empty when they carry none.
	SessionToken sensitive.String

	caller identity.Caller
}

// Caller returns a new Caller for a request signed with k: the principal's
// account, ARN, type, unique id, tags and policies, with AccessKeyID set
// and Region empty. The caller may change the returned value; its Tags map
// and Policies slice are shared by every Caller of the key and must be
// treated as read-only.
func (k *Key) Caller() *identity.Caller {
	c := k.caller
	return &c
}

// Store holds the access keys of a parsed credentials file. It is
// immutable and safe for concurrent use.
type Store struct {
	keys       map[string]*Key
	principals int
}

// Lookup returns the key with the given access key id.
func (s *Store) Lookup(accessKeyID string) (*Key, bool) {
	k, ok := s.keys[accessKeyID]
	return k, ok
}

// Credential returns the secret, the session token and a new Caller of
// accessKeyID (see [Key.Caller]); ok is false for an unknown key. It
// implements sigv4.Credentials.
func (s *Store) Credential(accessKeyID string) (secret, sessionToken sensitive.String, caller *identity.Caller, ok bool) {
	k, ok := s.keys[accessKeyID]
	if !ok {
		return "", "", nil, false
	}
	return k.Secret, k.SessionToken, k.Caller(), true
}

// Principals returns the number of principals in the file.
func (s *Store) Principals() int { return s.principals }

// Keys returns the number of access keys in the file.
func (s *Store) Keys() int { return len(s.keys) }

// The file format (private: only Parse reads it).
type file struct {
	Principals []filePrincipal `yaml:"principals"`
}

type filePrincipal struct {
	ARN        string            `yaml:"arn"`
	AccessKeys []fileKey         `yaml:"access_keys"`
	Tags       map[string]string `yaml:"tags"`
	Policies   []string          `yaml:"policies"`
}

type fileKey struct {
	ID           string `yaml:"id"`
	Secret       string `yaml:"secret"`
	SessionToken string `yaml:"session_token"`
}

// Load reads and parses the credentials file at path (see [Parse]).
func Load(path string) (*Store, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("credentials: cannot open %s: %v", path, err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads a credentials file. It refuses the whole file on the first
// problem: YAML that does not parse, an unknown field, a principal ARN that
// is not an account root, IAM user or IAM role, a duplicate principal, a
// principal without access keys, an access key id that is not 16 to 128
// characters of A-Z and 0-9 or that appears twice, an empty secret, a tag
// key of more than 128 or a value of more than 256 characters, a policy
// that is not a valid identity-based policy, or policies or tags on an
// account root (AWS attaches neither to the root user). The error is one
// line and names the entry, e.g.
//
//	credentials: principals[1] (arn:aws:iam::111122223333:user/bob): access_keys[0]: id "AKIA1" is not 16 to 128 characters of A-Z and 0-9
//
// It never quotes a secret or a session token.
func Parse(r io.Reader) (*Store, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("credentials: read: %v", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("credentials: the file is larger than %d bytes", MaxFileSize)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("credentials: the file lists no principals")
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("credentials: the file must hold one YAML document")
	}
	if len(f.Principals) == 0 {
		return nil, errors.New("credentials: the file lists no principals")
	}
	s := &Store{keys: make(map[string]*Key), principals: len(f.Principals)}
	// The role sessions' credentials are issued now, as the file is read
	// (CloudTrail's sessionContext.attributes.creationDate).
	issued := time.Now().UTC().Truncate(time.Second)
	seen := make(map[string]int, len(f.Principals))
	for i := range f.Principals {
		p := &f.Principals[i]
		name := fmt.Sprintf("principals[%d] (%s)", i, quoteIfOdd(p.ARN))
		if j, dup := seen[p.ARN]; dup && p.ARN != "" {
			return nil, fmt.Errorf("credentials: %s: is listed twice (also principals[%d])", name, j)
		}
		seen[p.ARN] = i
		caller, err := principalCaller(p)
		if err != nil {
			return nil, fmt.Errorf("credentials: %s: %v", name, err)
		}
		if len(p.AccessKeys) == 0 {
			return nil, fmt.Errorf("credentials: %s: access_keys: at least one access key is required", name)
		}
		for j, fk := range p.AccessKeys {
			if err := checkKey(fk, caller.Type == identity.TypeAssumedRole); err != nil {
				return nil, fmt.Errorf("credentials: %s: access_keys[%d]: %v", name, j, err)
			}
			if _, dup := s.keys[fk.ID]; dup {
				return nil, fmt.Errorf("credentials: %s: access_keys[%d]: id %q is listed twice", name, j, fk.ID)
			}
			k := &Key{ID: fk.ID, Secret: sensitive.String(fk.Secret), SessionToken: sensitive.String(fk.SessionToken), caller: *caller}
			k.caller.AccessKeyID = fk.ID
			if caller.Type == identity.TypeAssumedRole {
				// The session is named after the access key.
				k.caller.ARN += fk.ID
				k.caller.Principal.ARN = k.caller.ARN
				k.caller.Principal.UserID += fk.ID
				k.caller.SessionIssued = issued
			}
			s.keys[fk.ID] = k
		}
	}
	return s, nil
}

// principalCaller validates p's ARN, tags and policies and returns the
// Caller template of its keys. For a role, ARN and UserID end just before
// the session name.
func principalCaller(p *filePrincipal) (*identity.Caller, error) {
	if p.ARN == "" {
		return nil, errors.New("arn: is required")
	}
	m := principalARNRE.FindStringSubmatch(p.ARN)
	if m == nil {
		return nil, errors.New("arn: is not an account root (arn:aws:iam::<12 digits>:root), " +
			"IAM user (arn:aws:iam::<account>:user/[path/]name) or IAM role (arn:aws:iam::<account>:role/[path/]name), " +
			"in the partition aws, aws-cn or aws-us-gov")
	}
	part, account, kind, pathName := m[1], m[2], m[3], m[5]
	if kind == "" {
		kind = m[4]
	}
	if kind == "root" {
		if len(p.Policies) > 0 {
			return nil, errors.New("policies: the account root cannot have policies (AWS attaches no policy to the root user; its account allows it everything)")
		}
		if len(p.Tags) > 0 {
			return nil, errors.New("tags: the account root cannot have tags (AWS cannot tag the root user)")
		}
		c := identity.Root(account, "", "")
		c.ARN = p.ARN // the root of the ARN's partition
		c.Principal.ARN, c.Principal.PrincipalARN = p.ARN, p.ARN
		return c, nil
	}
	if strings.HasPrefix(pathName, "/") || strings.Contains(pathName, "//") {
		return nil, fmt.Errorf("arn: the %s path has an empty segment", kind)
	}
	name := pathName
	if i := strings.LastIndexByte(pathName, '/'); i >= 0 {
		name = pathName[i+1:]
		if path := pathName[:i]; len(path)+2 > 512 {
			return nil, errors.New("arn: the path is longer than 512 characters")
		}
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("arn: the %s name %q is not 1 to 64 characters of letters, digits and +=,.@_-", kind, clip(name))
	}
	if err := checkTags(p.Tags); err != nil {
		return nil, err
	}
	policies := make([]*iam.Policy, 0, len(p.Policies))
	for i, text := range p.Policies {
		pol, err := parsePolicy(text)
		if err != nil {
			return nil, fmt.Errorf("policies[%d]: %v", i, err)
		}
		policies = append(policies, pol)
	}
	var tags map[string]string
	if len(p.Tags) > 0 {
		tags = p.Tags
	}
	c := &identity.Caller{Account: account, Tags: tags, Policies: policies}
	sum := sha256.Sum256([]byte(p.ARN))
	id := base32.StdEncoding.EncodeToString(sum[:10]) // 16 characters of A-Z2-7
	switch kind {
	case "user":
		c.ARN = p.ARN
		c.Type = identity.TypeIAMUser
		c.UserName = name
		c.Principal = iam.Principal{ARN: p.ARN, PrincipalARN: p.ARN, Account: account, UserID: "AIDA" + id}
	case "role":
		c.ARN = "arn:" + part + ":sts::" + account + ":assumed-role/" + name + "/"
		c.Type = identity.TypeAssumedRole
		c.Principal = iam.Principal{ARN: c.ARN, PrincipalARN: p.ARN, Account: account, UserID: "AROA" + id + ":"}
	}
	return c, nil
}

// principalARNRE matches the principal ARNs of the file: the account root,
// an IAM user or an IAM role, with an optional path (characters ! to ~), in
// the partition aws, aws-cn (China) or aws-us-gov (GovCloud).
// Groups: partition, account, "root", "user" or "role", path and name.
var principalARNRE = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):(?:(root)|(?:(user|role)/([!-~]+)))$`)

// nameRE matches IAM user and role names.
var nameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

func checkKey(k fileKey, role bool) error {
	if !isKeyID(k.ID) {
		return fmt.Errorf("id %q is not %d to %d characters of A-Z and 0-9", clip(k.ID), MinKeyIDLen, MaxKeyIDLen)
	}
	if role && len(k.ID) > MaxSessionNameLen {
		return fmt.Errorf("id %q is longer than %d characters, the longest role session name (a role's access key names its session)", clip(k.ID), MaxSessionNameLen)
	}
	if k.Secret == "" {
		return errors.New("secret: is required")
	}
	return nil
}

func isKeyID(s string) bool {
	if len(s) < MinKeyIDLen || len(s) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func checkTags(tags map[string]string) error {
	for k, v := range tags {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyLen || !utf8.ValidString(k) {
			return fmt.Errorf("tags: key %q is not 1 to %d characters", clip(k), MaxTagKeyLen)
		}
		if n := utf8.RuneCountInString(v); n > MaxTagValLen || !utf8.ValidString(v) {
			return fmt.Errorf("tags: the value of %q is longer than %d characters", clip(k), MaxTagValLen)
		}
	}
	return nil
}

// parsePolicy parses an identity-based policy; any finding refuses it.
func parsePolicy(text string) (*iam.Policy, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("is empty")
	}
	p, findings, err := iam.Parse(text, iam.ParseOptions{Kind: iam.IdentityPolicy})
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	if len(findings) > 0 {
		msg := findings[0].Check + ": " + oneLine(findings[0].Message)
		if len(findings) > 1 {
			msg += fmt.Sprintf(" (and %d more findings)", len(findings)-1)
		}
		return nil, errors.New(msg)
	}
	return p, nil
}

// yamlError turns a yaml.v3 error into one line without Go type names.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := typeProblem(te.Errors[0])
		if len(te.Errors) > 1 {
			msg += fmt.Sprintf(" (and %d more errors)", len(te.Errors)-1)
		}
		return errors.New("credentials: " + msg)
	}
	return errors.New("credentials: not valid YAML: " + oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
}

var (
	unknownFieldRE = regexp.MustCompile(`^(line \d+): field (.*) not found in type \S+$`)
	cannotRE       = regexp.MustCompile("^(line \\d+): cannot unmarshal (!!\\w+)(?: `.*`)? into (\\S+)$")
)

// typeProblem rewrites one of yaml.v3's unmarshal errors.
func typeProblem(s string) string {
	if m := unknownFieldRE.FindStringSubmatch(s); m != nil {
		return m[1] + ": unknown field " + strconvQuote(m[2])
	}
	if m := cannotRE.FindStringSubmatch(s); m != nil {
		want := "a mapping"
		switch t := m[3]; {
		case strings.HasPrefix(t, "[]"):
			want = "a list"
		case t == "string":
			want = "a string"
		}
		kind := map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "a string"}[m[2]]
		if kind == "" {
			kind = "a scalar"
		}
		return m[1] + ": found " + kind + " where " + want + " is expected"
	}
	return oneLine(s)
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", clip(s)) }

// quoteIfOdd returns an ARN as is for the error prefix, or quoted and
// clipped when it is empty, long or has characters that would break the
// one-line message.
func quoteIfOdd(s string) string {
	if s != "" && len(s) <= 200 && principalARNChars(s) {
		return s
	}
	return fmt.Sprintf("%q", clip(s))
}

func principalARNChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '(' || s[i] == ')' {
			return false
		}
	}
	return true
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clip bounds a value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "..."
	}
	return s
}
