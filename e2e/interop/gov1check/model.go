package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

type ref struct {
	Shape string `json:"shape"`
}

type shape struct {
	Type     string         `json:"type"`
	Members  map[string]ref `json:"members"`
	Required []string       `json:"required"`
	Member   *ref           `json:"member"`
	Key      *ref           `json:"key"`
	Value    *ref           `json:"value"`
	Enum     []string       `json:"enum"`
}

type model struct {
	Metadata struct {
		APIVersion   string `json:"apiVersion"`
		TargetPrefix string `json:"targetPrefix"`
	} `json:"metadata"`
	Operations map[string]struct {
		Output *ref  `json:"output"`
		Errors []ref `json:"errors"`
	} `json:"operations"`
	Shapes map[string]shape `json:"shapes"`
}

func loadModel(dir, svc string) (*model, error) {
	f, err := os.Open(filepath.Join(dir, svc, "service-2.json.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	m := &model{}
	return m, json.NewDecoder(z).Decode(m)
}

// check compares v, decoded with UseNumber, with shape name; it returns the
// differences, each prefixed by its path.
func (m *model) check(name string, v any, path string) []string {
	s, ok := m.Shapes[name]
	if !ok {
		return []string{path + ": shape " + name + " not in the model"}
	}
	bad := func(want string) []string {
		return []string{fmt.Sprintf("%s: %s is %s, the model says %s (%s)", path, shortJSON(v), jsonKind(v), want, name)}
	}
	switch s.Type {
	case "structure":
		o, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		var out []string
		for _, r := range s.Required {
			if _, ok := o[r]; !ok {
				out = append(out, fmt.Sprintf("%s: required member %s missing", path, r))
			}
		}
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			mr, ok := s.Members[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s: member %s is not in the model (%s)", path, k, name))
				continue
			}
			if o[k] == nil {
				out = append(out, fmt.Sprintf("%s.%s: null (AWS leaves an empty member out)", path, k))
				continue
			}
			out = append(out, m.check(mr.Shape, o[k], path+"."+k)...)
		}
		return out
	case "list":
		l, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		var out []string
		for i, e := range l {
			out = append(out, m.check(s.Member.Shape, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case "map":
		o, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		var out []string
		for k, e := range o {
			out = append(out, m.check(s.Key.Shape, k, path+"{key}")...)
			out = append(out, m.check(s.Value.Shape, e, path+"["+k+"]")...)
		}
		return out
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		// The deprecated CustomerMasterKeySpec "has the same value" as KeySpec
		// (the model's documentation); its enum was not extended for
		// ML_DSA_* and ECC_NIST_EDWARDS25519, and AWS sends those values
		// (CreateKey of ML_DSA_65 in AWS's security blog "How to create
		// post-quantum signatures using AWS KMS and ML-DSA", 2025-06-13).
		if name == "CustomerMasterKeySpec" && slices.Contains(m.Shapes["KeySpec"].Enum, str) {
			return nil
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return []string{fmt.Sprintf("%s: %q is not in enum %s", path, str, name)}
		}
	case "blob":
		str, ok := v.(string)
		if !ok {
			return bad("a base64 string")
		}
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			return []string{fmt.Sprintf("%s: not base64: %v", path, err)}
		}
	case "timestamp":
		if _, ok := v.(json.Number); !ok {
			return bad("a timestamp (epoch seconds, a JSON number)")
		}
	case "integer", "long":
		n, ok := v.(json.Number)
		if !ok {
			return bad("an integer")
		}
		if _, err := n.Int64(); err != nil {
			return bad("an integer")
		}
	case "double", "float":
		if _, ok := v.(json.Number); !ok {
			return bad("a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("a boolean")
		}
	default:
		return []string{path + ": unknown shape type " + s.Type}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func shortJSON(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

type record struct {
	service, op string
	status      int
	requestID   string
	body        []byte
	// signed is the request's SignedHeaders (of its Authorization header),
	// token its X-Amz-Security-Token.
	signed, token string
}

// recorder is the clients' http.RoundTripper: it keeps every response body
// and checks each response against the models as it arrives.
type recorder struct {
	c      *checker
	models map[string]*model
	mu     sync.Mutex
	recs   []record
	okOps  map[string]int
	wire   io.Writer // every response as a JSON line, if set
	n      int
	nOK    int
	nErr   int
}

func newRecorder(c *checker, dir string) (*recorder, error) {
	r := &recorder{c: c, models: map[string]*model{}, okOps: map[string]int{}}
	for svc, p := range map[string]string{"kms": "kms/2014-11-01", "secretsmanager": "secretsmanager/2017-10-17"} {
		m, err := loadModel(dir, p)
		if err != nil {
			return nil, fmt.Errorf("botocore model %s: %w", p, err)
		}
		r.models[svc] = m
	}
	return r, nil
}

func (r *recorder) last() record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.recs) == 0 {
		return record{}
	}
	return r.recs[len(r.recs)-1]
}

// count returns how many responses to service.op have been recorded.
func (r *recorder) count(service, op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.recs {
		if x.service == service && x.op == op {
			n++
		}
	}
	return n
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	prefix, op, _ := strings.Cut(target, ".")
	svc := "kms"
	if prefix == "secretsmanager" {
		svc = "secretsmanager"
	}
	rec := record{service: svc, op: op, status: resp.StatusCode, requestID: resp.Header.Get("X-Amzn-Requestid"), body: body,
		signed: signedHeaders(req.Header.Get("Authorization")), token: req.Header.Get("X-Amz-Security-Token")}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.n++
	if r.wire != nil {
		line, err := json.Marshal(map[string]any{"target": target, "status": rec.status, "requestId": rec.requestID, "body": json.RawMessage(body)})
		if err != nil { // not JSON: keep it as a string
			line, _ = json.Marshal(map[string]any{"target": target, "status": rec.status, "requestId": rec.requestID, "body": string(body)})
		}
		r.wire.Write(append(line, '\n'))
	}
	r.mu.Unlock()
	r.checkResponse(rec, resp.Header)
	return resp, nil
}

func (r *recorder) checkResponse(rec record, h http.Header) {
	c := r.c
	what := rec.service + "." + rec.op
	if ct := h.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		c.deviation("%s: Content-Type %q, AWS sends application/x-amz-json-1.1", what, ct)
	}
	if rec.requestID == "" {
		c.deviation("%s: no x-amzn-RequestId header", what)
	}
	m := r.models[rec.service]
	opm, known := m.Operations[rec.op]
	if !known {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(rec.body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		c.deviation("%s: HTTP %d body is not JSON: %q", what, rec.status, rec.body)
		return
	}
	if rec.status == http.StatusOK {
		r.mu.Lock()
		r.nOK++
		r.okOps[what]++
		r.mu.Unlock()
		if opm.Output == nil {
			if o, ok := v.(map[string]any); !ok || len(o) != 0 {
				c.deviation("%s: body %s, the model has no output (AWS sends {})", what, rec.body)
			}
			return
		}
		for _, p := range m.check(opm.Output.Shape, v, rec.op) {
			c.deviation("%s response: %s", what, p)
		}
		return
	}
	r.mu.Lock()
	r.nErr++
	r.mu.Unlock()
	o, ok := v.(map[string]any)
	if !ok {
		c.deviation("%s: error body %s is not an object", what, rec.body)
		return
	}
	typ, _ := o["__type"].(string)
	if typ == "" {
		c.deviation("%s: error body %s has no __type", what, rec.body)
		return
	}
	delete(o, "__type")
	if _, ok := m.Shapes[typ]; !ok {
		return // an error the model does not declare (e.g. a common error): shape unknown
	}
	for _, p := range m.check(typ, o, typ) {
		c.deviation("%s error body: %s", what, p)
	}
}

// signedHeaders returns the SignedHeaders of a SigV4 Authorization header.
func signedHeaders(auth string) string {
	_, rest, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return ""
	}
	signed, _, _ := strings.Cut(rest, ",")
	return strings.TrimSpace(signed)
}
