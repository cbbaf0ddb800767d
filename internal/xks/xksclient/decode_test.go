package xksclient

import (
	"bytes"
	"encoding/base64"
	"github.com/keyfort/keyfort/internal/xks"
	"strings"
	"testing"
)

// The specification's examples.
const (
	specEncryptAnswer = `{
    "authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ==",
    "ciphertext": "ghxkK1txeDNn3q8Y",
    "ciphertextDataIntegrityValue": "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
    "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
    "initializationVector": "HMrlRw85cAJUd5Ax"
}`
	specAAD          = "project=nile,department=marketing"
	specHealthAnswer = `{
    "xksProxyFleetSize": 2,
    "xksProxyVendor": "Acme Corp",
    "xksProxyModel": "Acme XKS xks.Proxy 1.0",
    "ekmVendor": "Thales Group",
    "ekmFleetDetails": [
        {"id": "hsm-id-1", "model": "Luna 5.0", "healthStatus": "DEGRADED"},
        {"id": "hsm-id-2", "model": "Luna 5.1", "healthStatus": "ACTIVE"}
    ]
}`
	specKeyMetadataAnswer = `{"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}`
	specErrorAnswer       = `{"errorName": "InvalidCiphertextException", "errorMessage": "The request was rejected because the specified ciphertext, or additional authenticated data is corrupted, missing, or otherwise invalid."}`
)

func mustParse(t *testing.T, s string) members {
	t.Helper()
	m, ok := parseObject([]byte(s))
	if !ok {
		t.Fatalf("parseObject(%q) failed", s)
	}
	return m
}

// TestIntegrityVector checks the ciphertext data integrity value against
// the specification's appendix C: 86 bytes hashing to
// a8703f22...cf5ec7, qHA/ImC9...fPXsc= in Base64.
func TestIntegrityVector(t *testing.T) {
	ct, msg := decodeEncrypt(mustParse(t, specEncryptAnswer), 12, []byte(specAAD))
	if msg != "" {
		t.Fatalf("decodeEncrypt(specification example) = %q", msg)
	}
	if string(ct.Metadata) != "key_version=1" || len(ct.IV) != 12 || len(ct.Tag) != 16 {
		t.Errorf("decodeEncrypt = %+v", ct)
	}
	sum := integrity([]byte(specAAD), ct)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=" {
		t.Errorf("integrity = %s, want qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=", got)
	}
	// Without the AAD the same answer does not match.
	if _, msg := decodeEncrypt(mustParse(t, specEncryptAnswer), 12, nil); !strings.Contains(msg, "does not match") {
		t.Errorf("decodeEncrypt without the AAD = %q, want a mismatch", msg)
	}
}

func TestDecodeSpecExamples(t *testing.T) {
	h, msg := decodeHealth(mustParse(t, specHealthAnswer))
	if msg != "" || h.ProxyFleetSize != 2 || h.EKMVendor != "Thales Group" || len(h.EKMFleet) != 2 ||
		h.EKMFleet[0] != (xks.EKM{ID: "hsm-id-1", Model: "Luna 5.0", HealthStatus: xks.HealthDegraded}) {
		t.Errorf("decodeHealth(specification example) = %+v, %q", h, msg)
	}
	km, msg := decodeKeyMetadata(mustParse(t, specKeyMetadataAnswer))
	if msg != "" || km.KeySpec != xks.KeySpecAES256 || km.KeyStatus != xks.KeyStatusEnabled || len(km.KeyUsage) != 2 {
		t.Errorf("decodeKeyMetadata(specification example) = %+v, %q", km, msg)
	}
	e := statusError(xks.OpDecrypt, 400, []byte(specErrorAnswer))
	if e.Kind != xks.KindProxy || e.Name != xks.NameInvalidCiphertext || e.Status != 400 || !strings.HasPrefix(e.Message, "The request was rejected") {
		t.Errorf("statusError(specification example) = %+v", e)
	}
}

func TestDecodeMalformed(t *testing.T) {
	encrypt := func(edit func(m map[string]string)) string {
		// Member values as JSON text.
		m := map[string]string{
			"ciphertext": `"ghxkK1txeDNn3q8Y"`, "initializationVector": `"HMrlRw85cAJUd5Ax"`,
			"authenticationTag": `"vBxN2ncH1oEkR8WVXpmyYQ=="`, "ciphertextMetadata": `"a2V5X3ZlcnNpb249MQ=="`,
			"ciphertextDataIntegrityValue": `"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="`,
		}
		edit(m)
		var b strings.Builder
		b.WriteString("{")
		first := true
		for k, v := range m {
			if !first {
				b.WriteString(",")
			}
			first = false
			b.WriteString(`"` + k + `":` + v)
		}
		b.WriteString("}")
		return b.String()
	}
	q := func(s string) string { return `"` + s + `"` }
	if _, msg := decodeEncrypt(mustParse(t, encrypt(func(map[string]string) {})), 12, []byte(specAAD)); msg != "" {
		t.Fatalf("decodeEncrypt(sound answer) = %q", msg)
	}
	tests := []struct {
		name, body, want string
	}{
		{"no tag", encrypt(func(m map[string]string) { delete(m, "authenticationTag") }), "authenticationTag is missing"},
		{"null tag", encrypt(func(m map[string]string) { m["authenticationTag"] = "null" }), "authenticationTag is missing"},
		{"tag a number", encrypt(func(m map[string]string) { m["authenticationTag"] = "16" }), "not a Base64 string"},
		{"tag not base64", encrypt(func(m map[string]string) { m["authenticationTag"] = q("!!!") }), "not a Base64 string"},
		{"tag URL-safe base64", encrypt(func(m map[string]string) { m["authenticationTag"] = q("vBxN2ncH1oEkR8WVXpmyYQ") }), "not a Base64 string"},
		{"name in other case", encrypt(func(m map[string]string) {
			m["AuthenticationTag"] = m["authenticationTag"]
			delete(m, "authenticationTag")
		}), "authenticationTag is missing"},
		{"no integrity value", encrypt(func(m map[string]string) { delete(m, "ciphertextDataIntegrityValue") }), "ciphertextDataIntegrityValue is missing"},
		{"short integrity value", encrypt(func(m map[string]string) { m["ciphertextDataIntegrityValue"] = q("qHA/ImC9") }), "not a SHA-256"},
		{"11-byte IV", encrypt(func(m map[string]string) { m["initializationVector"] = q("HMrlRw85cAJUd5A=") }), "initializationVector is not 12 or 16"},
		{"long metadata", encrypt(func(m map[string]string) {
			m["ciphertextMetadata"] = q(base64.StdEncoding.EncodeToString(make([]byte, 21)))
		}), "longer than 20"},
		{"short ciphertext", encrypt(func(m map[string]string) { m["ciphertext"] = q("ghxkK1txeDNn") }), "not as long as the plaintext"},
	}
	for _, tt := range tests {
		_, msg := decodeEncrypt(mustParse(t, tt.body), 12, []byte(specAAD))
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: decodeEncrypt = %q, want %q", tt.name, msg, tt.want)
		}
	}

	for _, tt := range []struct{ name, body string }{
		{"fleet size 0", strings.Replace(specHealthAnswer, `"xksProxyFleetSize": 2`, `"xksProxyFleetSize": 0`, 1)},
		{"fleet size 1.5", strings.Replace(specHealthAnswer, `"xksProxyFleetSize": 2`, `"xksProxyFleetSize": 1.5`, 1)},
		{"fleet size string", strings.Replace(specHealthAnswer, `"xksProxyFleetSize": 2`, `"xksProxyFleetSize": "2"`, 1)},
		{"fleet size huge", strings.Replace(specHealthAnswer, `"xksProxyFleetSize": 2`, `"xksProxyFleetSize": 1e30`, 1)},
		{"no vendor", strings.Replace(specHealthAnswer, `"xksProxyVendor": "Acme Corp",`, ``, 1)},
		{"unknown health status", strings.Replace(specHealthAnswer, `DEGRADED`, `SICK`, 1)},
		{"entry without model", strings.Replace(specHealthAnswer, `"model": "Luna 5.0", `, ``, 1)},
		{"entry not an object", strings.Replace(specHealthAnswer, `{"id": "hsm-id-1", "model": "Luna 5.0", "healthStatus": "DEGRADED"}`, `"x"`, 1)},
		{"empty fleet", `{"xksProxyFleetSize":1,"xksProxyVendor":"a","xksProxyModel":"b","ekmVendor":"c","ekmFleetDetails":[]}`},
		{"fleet an object", `{"xksProxyFleetSize":1,"xksProxyVendor":"a","xksProxyModel":"b","ekmVendor":"c","ekmFleetDetails":{}}`},
	} {
		if h, msg := decodeHealth(mustParse(t, tt.body)); msg == "" {
			t.Errorf("%s: decodeHealth = %+v, want an error", tt.name, h)
		}
	}

	for _, tt := range []struct{ name, body string }{
		{"no keySpec", `{"keyUsage": ["ENCRYPT"], "keyStatus": "ENABLED"}`},
		{"usage null", `{"keySpec": "AES_256", "keyUsage": null, "keyStatus": "ENABLED"}`},
		{"usage numbers", `{"keySpec": "AES_256", "keyUsage": [1], "keyStatus": "ENABLED"}`},
		{"usage a string", `{"keySpec": "AES_256", "keyUsage": "ENCRYPT", "keyStatus": "ENABLED"}`},
		{"status unknown", `{"keySpec": "AES_256", "keyUsage": [], "keyStatus": "PENDING"}`},
		{"status lower case", `{"keySpec": "AES_256", "keyUsage": [], "keyStatus": "enabled"}`},
		{"11 usages", `{"keySpec": "AES_256", "keyUsage": ["A","B","C","D","E","F","G","H","I","J","K"], "keyStatus": "ENABLED"}`},
	} {
		if km, msg := decodeKeyMetadata(mustParse(t, tt.body)); msg == "" {
			t.Errorf("%s: decodeKeyMetadata = %+v, want an error", tt.name, km)
		}
	}

	for _, body := range []string{"", "null", "[]", `"x"`, "{", `{"a":1} {}`, `{"a":1}x`, "<html></html>"} {
		if _, ok := parseObject([]byte(body)); ok {
			t.Errorf("parseObject(%q) = ok, want failure", body)
		}
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		kind   xks.Kind
		ename  string
		msg    string
	}{
		{"known name", 404, `{"errorName":"KeyNotFoundException"}`, xks.KindProxy, xks.NameKeyNotFound, ""},
		{"name at another status", 500, `{"errorName":"ThrottlingException"}`, xks.KindProxy, xks.NameThrottling, ""},
		{"authentication", 401, `{"errorName":"AuthenticationFailedException","errorMessage":"bad sig"}`, xks.KindAuthFailed, xks.NameAuthenticationFailed, "bad sig"},
		{"403 access denied by name", 403, `{"errorName":"AccessDeniedException"}`, xks.KindProxy, xks.NameAccessDenied, ""},
		{"401 no body", 401, ``, xks.KindAuthFailed, "", "the proxy answered HTTP 401 without an errorName"},
		{"403 html", 403, `<html>forbidden</html>`, xks.KindAuthFailed, "", "the proxy answered HTTP 403 without an errorName"},
		{"500 no name", 500, `{"message":"x"}`, xks.KindInvalidResponse, "", "the proxy answered HTTP 500 without an errorName"},
		{"name not a string", 400, `{"errorName":7}`, xks.KindInvalidResponse, "", "the proxy answered HTTP 400 without an errorName"},
		{"unknown name", 400, `{"errorName":"Nope\u0000Exception` + strings.Repeat("x", 100) + `"}`, xks.KindInvalidResponse,
			"NopeException" + strings.Repeat("x", 51), "unknown errorName"},
		{"message cleaned and clipped", 500, `{"errorName":"InternalException","errorMessage":"a\nb\u00e9` + strings.Repeat("m", 600) + `"}`,
			xks.KindProxy, xks.NameInternal, "ab" + strings.Repeat("m", 510)},
		{"message not a string", 500, `{"errorName":"InternalException","errorMessage":{}}`, xks.KindProxy, xks.NameInternal, ""},
	}
	for _, tt := range tests {
		e := statusError(xks.OpEncrypt, tt.status, []byte(tt.body))
		if e.Kind != tt.kind || e.Name != tt.ename || e.Message != tt.msg || e.Status != tt.status || e.Op != xks.OpEncrypt {
			t.Errorf("%s: statusError = %+v, want kind %v name %q message %q", tt.name, e, tt.kind, tt.ename, tt.msg)
		}
	}
}

func TestKindString(t *testing.T) {
	for k := xks.KindConfig; k <= xks.KindProxy; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "Kind(") {
			t.Errorf("xks.Kind(%d).String() = %q", k, s)
		}
	}
	if s := xks.Kind(0).String(); s != "Kind(0)" {
		t.Errorf("xks.Kind(0).String() = %q, want Kind(0)", s)
	}
}

func TestValidKeyIDAndPath(t *testing.T) {
	for _, id := range []string{"a", "A-Z_a.z-09", strings.Repeat("k", 128), "b42c7fbf-de61-441c-ae24-123456789012"} {
		if !xks.ValidKeyID(id) {
			t.Errorf("xks.ValidKeyID(%q) = false", id)
		}
	}
	for _, id := range []string{"", strings.Repeat("k", 129), "a/b", "a b", "a%20", "é", "a:b"} {
		if xks.ValidKeyID(id) {
			t.Errorf("xks.ValidKeyID(%q) = true", id)
		}
	}
	for _, p := range []string{"/kms/xks/v1", "/example/kms/xks/v1", "/keystores/4a0d79d6-1d1b-49fd-9dbe-799cb9c0fb3f/kms/xks/v1", "/a_b/c-d/kms/xks/v1"} {
		if !xks.ValidURIPath(p) {
			t.Errorf("xks.ValidURIPath(%q) = false", p)
		}
	}
	for _, p := range []string{"", "/", "kms/xks/v1", "/kms/xks/v2", "/kms/xks/v1/", "/a.b/kms/xks/v1", "/a b/kms/xks/v1", "/" + strings.Repeat("a", 118) + "/kms/xks/v1"} {
		if xks.ValidURIPath(p) {
			t.Errorf("xks.ValidURIPath(%q) = true", p)
		}
	}
}

// FuzzAnswers checks that no answer makes a decoder panic, and that what
// decodeEncrypt accepts is well formed.
func FuzzAnswers(f *testing.F) {
	for _, s := range []string{specEncryptAnswer, specHealthAnswer, specKeyMetadataAnswer, specErrorAnswer, "{}", `{"plaintext":null}`} {
		f.Add([]byte(s), 12)
	}
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		_ = statusError(xks.OpEncrypt, 400, data)
		m, ok := parseObject(data)
		if !ok {
			return
		}
		_, _ = decodeHealth(m)
		_, _ = decodeKeyMetadata(m)
		_, _, _ = m.bytes("plaintext")
		ct, msg := decodeEncrypt(m, n, []byte(specAAD))
		if msg == "" && (len(ct.Ciphertext) != n || len(ct.Tag) != xks.TagSize || len(ct.Metadata) > xks.MaxCiphertextMetadata ||
			len(ct.IV) != 12 && len(ct.IV) != 16) {
			t.Errorf("decodeEncrypt accepted %+v", ct)
		}
		if msg == "" {
			sum := integrity([]byte(specAAD), ct)
			cdiv, _, _ := m.bytes("ciphertextDataIntegrityValue")
			if !bytes.Equal(sum[:], cdiv) {
				t.Errorf("decodeEncrypt accepted a mismatching integrity value")
			}
		}
	})
}

func TestProxyCheck(t *testing.T) {
	p := xks.Proxy{Endpoint: "https://xks.example.com:443", Path: "/kms/xks/v1", AccessKeyID: "A", Secret: "s", Region: "us-east-1"}
	for endpoint, want := range map[string]string{
		"https://xks.example.com:443":  "https://xks.example.com",
		"https://xks.example.com:6443": "https://xks.example.com:6443",
		"https://xks.example.com/":     "https://xks.example.com",
		"HTTPS://xks.example.com":      "https://xks.example.com",
	} {
		p.Endpoint = endpoint
		u, err := checkProxy(&p, xks.OpEncrypt)
		if err != nil || u.String() != want {
			t.Errorf("check(%q) = %v, %v; want %s", endpoint, u, err, want)
		}
	}
}
