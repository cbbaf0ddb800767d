package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// model is the part of a botocore service-2.json that the generator uses.
type model struct {
	Metadata struct {
		ServiceID    string `json:"serviceId"`
		TargetPrefix string `json:"targetPrefix"`
		SigningName  string `json:"signingName"`
		// EndpointPrefix is the signing name of models without one.
		EndpointPrefix string `json:"endpointPrefix"`
		Protocol       string `json:"protocol"`
		JSONVersion    string `json:"jsonVersion"`
	} `json:"metadata"`
	Operations map[string]*modelOperation `json:"operations"`
	Shapes     map[string]*shape          `json:"shapes"`
}

// modelOperation is one entry of the model's "operations" object.
type modelOperation struct {
	Name   string     `json:"name"`
	Input  *shapeRef  `json:"input"`
	Output *shapeRef  `json:"output"`
	Errors []shapeRef `json:"errors"`
}

// shapeRef points at a shape by name.
type shapeRef struct {
	Shape string `json:"shape"`
}

// member is one member of a structure shape, in model order.
type member struct {
	Name      string
	Shape     string
	Sensitive bool
	// IdempotencyToken marks a member the SDKs fill with a random UUID when
	// the caller leaves it out (Secrets Manager's ClientRequestToken).
	IdempotencyToken bool
}

// shape is one entry of the model's "shapes" object.
type shape struct {
	Name      string
	Type      string
	Required  []string
	Members   []member // in model order
	Member    *shapeRef
	Key       *shapeRef
	Value     *shapeRef
	Enum      []string
	Min       *int64
	Max       *int64
	Pattern   *string
	Sensitive bool
	Exception bool
	Fault     bool
	Error     *struct {
		Code           string `json:"code"`
		HTTPStatusCode int    `json:"httpStatusCode"`
		SenderFault    bool   `json:"senderFault"`
	}
}

// UnmarshalJSON decodes a shape and keeps its members in model order, which
// a Go map would lose.
func (s *shape) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type      string          `json:"type"`
		Required  []string        `json:"required"`
		Members   json.RawMessage `json:"members"`
		Member    *shapeRef       `json:"member"`
		Key       *shapeRef       `json:"key"`
		Value     *shapeRef       `json:"value"`
		Enum      []string        `json:"enum"`
		Min       *float64        `json:"min"`
		Max       *float64        `json:"max"`
		Pattern   *string         `json:"pattern"`
		Sensitive bool            `json:"sensitive"`
		Exception bool            `json:"exception"`
		Fault     bool            `json:"fault"`
		Error     *struct {
			Code           string `json:"code"`
			HTTPStatusCode int    `json:"httpStatusCode"`
			SenderFault    bool   `json:"senderFault"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Type, s.Required, s.Member, s.Key, s.Value = raw.Type, raw.Required, raw.Member, raw.Key, raw.Value
	s.Enum, s.Pattern, s.Sensitive, s.Exception, s.Fault, s.Error = raw.Enum, raw.Pattern, raw.Sensitive, raw.Exception, raw.Fault, raw.Error
	if raw.Min != nil {
		v := int64(*raw.Min)
		s.Min = &v
	}
	if raw.Max != nil {
		v := int64(*raw.Max)
		s.Max = &v
	}
	if len(raw.Members) == 0 {
		return nil
	}
	members, err := orderedMembers(raw.Members)
	if err != nil {
		return err
	}
	s.Members = members
	return nil
}

// orderedMembers decodes a "members" object keeping the order of its keys.
func orderedMembers(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("members: want an object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("members: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("members: want a key, got %v", tok)
		}
		var m struct {
			Shape            string `json:"shape"`
			Sensitive        bool   `json:"sensitive"`
			IdempotencyToken bool   `json:"idempotencyToken"`
		}
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("members: %s: %w", name, err)
		}
		out = append(out, member{Name: name, Shape: m.Shape, Sensitive: m.Sensitive, IdempotencyToken: m.IdempotencyToken})
	}
	return out, nil
}

// isRequired reports whether the structure s requires member name.
func (s *shape) isRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// loadModel reads and decodes a pinned model file.
func loadModel(path string) (*model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	var m model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	for name, s := range m.Shapes {
		s.Name = name
	}
	for name, op := range m.Operations {
		if op.Name == "" {
			op.Name = name
		}
	}
	if m.Metadata.Protocol != "json" {
		return nil, fmt.Errorf("load model %s: protocol %q, want json", path, m.Metadata.Protocol)
	}
	return &m, nil
}

// operationNames returns the model's operation names, sorted.
func (m *model) operationNames() []string {
	names := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// shape returns the named shape or panics with a generator error: a model
// that refers to a missing shape is broken and generation must stop.
func (m *model) shape(name string) *shape {
	s, ok := m.Shapes[name]
	if !ok {
		panic(genError{fmt.Errorf("model refers to unknown shape %q", name)})
	}
	return s
}

// locateBotocore returns the directory of the installed botocore package,
// asking Python.
func locateBotocore() (string, error) {
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		return "", fmt.Errorf("locate botocore with python3: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("locate botocore with python3: empty answer")
	}
	return dir, nil
}
