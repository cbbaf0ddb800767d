package iam

// The policy grammar. Three kinds of result:
//   - a document that is not one JSON value is a *SyntaxError;
//   - a JSON document that breaks the grammar (a missing Effect, an unknown
//     action, an unknown condition operator, ...) parses into as much of a
//     Policy as can be read, plus Findings named like IAM Access Analyzer's
//     policy checks (MISSING_EFFECT, INVALID_ACTION, ...);
//   - a valid document parses into a Policy with no findings, ready to
//     evaluate.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Check names of Findings: IAM Access Analyzer's issue codes.
const (
	CheckDataType          = "DATA_TYPE_MISMATCH"
	CheckPolicyElement     = "INVALID_POLICY_ELEMENT"
	CheckVersion           = "INVALID_VERSION"
	CheckMissingStatement  = "MISSING_STATEMENT"
	CheckMissingEffect     = "MISSING_EFFECT"
	CheckEffect            = "INVALID_EFFECT"
	CheckMissingPrincipal  = "MISSING_PRINCIPAL"
	CheckPrincipalKey      = "INVALID_PRINCIPAL_KEY"
	CheckPrincipalFormat   = "INVALID_PRINCIPAL_FORMAT"
	CheckMissingAction     = "MISSING_ACTION"
	CheckAction            = "INVALID_ACTION"
	CheckUnsupportedAction = "UNSUPPORTED_ACTION_IN_POLICY"
	CheckMissingResource   = "MISSING_RESOURCE"
	CheckResource          = "INVALID_ARN_RESOURCE"
	CheckConditionOperator = "INVALID_CONDITION_OPERATOR"
	CheckConditionKey      = "INVALID_CONDITION_KEY_FORMAT"
)

// Policy versions the grammar accepts. Policy variables are replaced only
// in Version2012 documents, as IAM does.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Effects.
const (
	EffectAllow = "Allow"
	EffectDeny  = "Deny"
)

// Kind says which kind of policy a document is.
type Kind uint8

const (
	// ResourcePolicy documents (key policies, secret resource policies)
	// name who they apply to: every statement has a Principal or a
	// NotPrincipal.
	ResourcePolicy Kind = iota
	// IdentityPolicy documents are attached to a principal and have no
	// Principal element.
	IdentityPolicy
)

// ParseOptions says what a document must be.
type ParseOptions struct {
	// Kind is the kind of policy.
	Kind Kind
	// Service, if set, is the only service whose actions the document may
	// name (a resource policy of that service's resource), e.g.
	// "secretsmanager".
	Service string
	// ResourceType names the resource in findings about actions of other
	// services, e.g. "AWS::SecretsManager::Secret".
	ResourceType string
	// Actions, if set, are the action names of Service (without the
	// prefix); an action that matches none of them is INVALID_ACTION.
	Actions []string
}

// Policy is a parsed policy document. Statements hold what could be read
// even when the document has findings; evaluate only a policy without.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement. The lists hold the values as written; a
// single string becomes a one-element list.
type Statement struct {
	Sid          string
	Effect       string
	Principal    *PrincipalElement
	NotPrincipal *PrincipalElement
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []Condition

	// Evaluation forms, made once by Parse: actions in lower case,
	// resources with the keys of their policy variables in lower case.
	action, notAction     []string
	resource, notResource []string
}

// PrincipalElement is a Principal or NotPrincipal element: "*" (Any), or a
// map from principal type (AWS, Service, Federated, CanonicalUser) to
// values.
type PrincipalElement struct {
	Any    bool
	Values map[string][]string
}

// Condition is one condition key under one operator.
type Condition struct {
	// Operator is the operator as written, e.g. "ForAnyValue:StringLike".
	Operator string
	// Key is the condition key as written.
	Key string
	// Values are the values as strings (numbers and booleans as written).
	Values []string

	// Evaluation forms, made once by Parse.
	vals      []string // Values with their policy variables' keys in lower case
	key       string   // Key in lower case
	qualifier qualifier
	base      operator
	ifExists  bool
}

// Finding is one grammar problem.
type Finding struct {
	Check   string
	Message string
}

// SyntaxError reports a document that is not one JSON value.
type SyntaxError struct {
	Offset int64
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("Fix the JSON syntax error at index %d.", e.Offset)
}

// Parse parses a policy document. It returns a *SyntaxError when text is
// not JSON; otherwise the document and its grammar findings (none for a
// valid policy), in document order.
func Parse(text string, opt ParseOptions) (*Policy, []Finding, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, nil, &SyntaxError{Offset: syntaxOffset(err, dec)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, &SyntaxError{Offset: dec.InputOffset()}
	}
	p := &parser{opt: opt}
	doc := p.document(root)
	return doc, p.findings, nil
}

// MustParse parses a document that is known to be valid (a built-in
// policy) and panics otherwise.
func MustParse(text string, opt ParseOptions) *Policy {
	p, findings, err := Parse(text, opt)
	if err != nil {
		panic("iam: MustParse: " + err.Error())
	}
	if len(findings) > 0 {
		panic("iam: MustParse: " + findings[0].Message)
	}
	return p
}

func syntaxOffset(err error, dec *json.Decoder) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return dec.InputOffset()
}

type parser struct {
	opt      ParseOptions
	findings []Finding
}

func (p *parser) add(check, format string, args ...any) {
	p.findings = append(p.findings, Finding{Check: check, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) mismatch(where, want string) {
	p.add(CheckDataType, "The text does not match the expected JSON data type %s at %s.", want, where)
}

// sortedKeys returns the keys of m in order, so that findings come out in a
// stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *parser) document(root any) *Policy {
	doc := &Policy{}
	obj, ok := root.(map[string]any)
	if !ok {
		p.mismatch("the top level of the policy", "Object")
		return doc
	}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "Version", "Id", "Statement":
		default:
			p.add(CheckPolicyElement, "The policy element %s is not valid.", k)
		}
	}
	if v, ok := obj["Version"]; ok {
		s, isStr := v.(string)
		switch {
		case !isStr:
			p.mismatch("Version", "String")
		case s != Version2012 && s != Version2008:
			p.add(CheckVersion, "The %s version is not valid. Use one of the following versions: %s, %s.", s, Version2012, Version2008)
		default:
			doc.Version = s
		}
	}
	if v, ok := obj["Id"]; ok {
		if s, isStr := v.(string); isStr {
			doc.ID = s
		} else {
			p.mismatch("Id", "String")
		}
	}
	st, ok := obj["Statement"]
	if !ok {
		p.add(CheckMissingStatement, "Add a Statement element to the policy.")
		return doc
	}
	var list []any
	switch v := st.(type) {
	case map[string]any:
		list = []any{v}
	case []any:
		list = v
	default:
		p.mismatch("Statement", "Array")
		return doc
	}
	if len(list) == 0 {
		p.add(CheckMissingStatement, "Add a statement to the Statement element of the policy.")
	}
	for i, item := range list {
		where := fmt.Sprintf("Statement[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			p.mismatch(where, "Object")
			continue
		}
		doc.Statements = append(doc.Statements, p.statement(where, m))
	}
	return doc
}

func (p *parser) statement(where string, m map[string]any) Statement {
	var st Statement
	for _, k := range sortedKeys(m) {
		switch k {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			p.add(CheckPolicyElement, "The policy element %s in %s is not valid.", k, where)
		}
	}
	if v, ok := m["Sid"]; ok {
		if s, isStr := v.(string); isStr {
			st.Sid = s
		} else {
			p.mismatch(where+".Sid", "String")
		}
	}

	// Effect.
	if v, ok := m["Effect"]; !ok {
		p.add(CheckMissingEffect, "Add an Effect element to %s with a value of Allow or Deny.", where)
	} else if s, isStr := v.(string); !isStr {
		p.mismatch(where+".Effect", "String")
	} else if s != EffectAllow && s != EffectDeny {
		p.add(CheckEffect, "The Effect element of %s can be Allow or Deny, not %q.", where, s)
	} else {
		st.Effect = s
	}

	// Principal / NotPrincipal: exactly one in a resource policy, none in
	// an identity policy.
	_, hasP := m["Principal"]
	_, hasNP := m["NotPrincipal"]
	switch {
	case p.opt.Kind == IdentityPolicy && (hasP || hasNP):
		p.add(CheckPolicyElement, "%s can't contain a Principal or NotPrincipal element: an identity-based policy applies to the principal it is attached to.", where)
	case p.opt.Kind == IdentityPolicy:
	case hasP && hasNP:
		p.add(CheckPolicyElement, "%s can't contain both Principal and NotPrincipal.", where)
	case !hasP && !hasNP:
		p.add(CheckMissingPrincipal, "Add a Principal element to %s.", where)
	case hasP:
		st.Principal = p.principal(where+".Principal", m["Principal"])
	default:
		st.NotPrincipal = p.principal(where+".NotPrincipal", m["NotPrincipal"])
	}

	// Action / NotAction.
	_, hasA := m["Action"]
	_, hasNA := m["NotAction"]
	switch {
	case hasA && hasNA:
		p.add(CheckPolicyElement, "%s can't contain both Action and NotAction.", where)
	case !hasA && !hasNA:
		p.add(CheckMissingAction, "Add an Action or NotAction element to %s.", where)
	case hasA:
		st.Action = p.actions(where+".Action", m["Action"])
	default:
		st.NotAction = p.actions(where+".NotAction", m["NotAction"])
	}
	st.action, st.notAction = lowerAll(st.Action), lowerAll(st.NotAction)

	// Resource / NotResource.
	_, hasR := m["Resource"]
	_, hasNR := m["NotResource"]
	switch {
	case hasR && hasNR:
		p.add(CheckPolicyElement, "%s can't contain both Resource and NotResource.", where)
	case !hasR && !hasNR:
		p.add(CheckMissingResource, "Add a Resource or NotResource element to %s.", where)
	case hasR:
		st.Resource = p.resources(where+".Resource", m["Resource"])
	default:
		st.NotResource = p.resources(where+".NotResource", m["NotResource"])
	}
	st.resource, st.notResource = normalizeAll(st.Resource), normalizeAll(st.NotResource)

	if v, ok := m["Condition"]; ok {
		st.Conditions = p.conditions(where+".Condition", v)
	}
	return st
}

func normalizeAll(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = normalizeVariables(s)
	}
	return out
}

func lowerAll(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	return out
}

// stringList reads a string or an array of strings.
func (p *parser) stringList(where string, v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		if len(x) == 0 {
			return nil, true
		}
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				p.mismatch(fmt.Sprintf("%s[%d]", where, i), "String")
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	p.mismatch(where, "String or Array")
	return nil, false
}

var (
	accountIDRE    = regexp.MustCompile(`^[0-9]{12}$`)
	principalARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:(iam|sts)::([0-9]{12}|aws):[^\s]+$`)
	uniqueIDRE     = regexp.MustCompile(`^A[A-Z0-9]{15,127}$`)
	serviceRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*\.[a-z0-9.-]+$`)
	canonicalRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	resourceARNRE  = regexp.MustCompile(`^arn:[^:\s]*:[^:\s]*:[^:\s]*:[^:\s]*:\S+$`)
)

func (p *parser) principal(where string, v any) *PrincipalElement {
	pr := &PrincipalElement{}
	switch x := v.(type) {
	case string:
		if x != "*" {
			p.add(CheckPrincipalFormat, "The %s element must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}, not %q.", where, x)
			return pr
		}
		pr.Any = true
		return pr
	case map[string]any:
		if len(x) == 0 {
			p.add(CheckMissingPrincipal, "Add a principal to the %s element.", where)
			return pr
		}
		pr.Values = make(map[string][]string, len(x))
		for _, k := range sortedKeys(x) {
			vals, ok := p.stringList(where+"."+k, x[k])
			if !ok {
				continue
			}
			if len(vals) == 0 {
				p.add(CheckMissingPrincipal, "Add a principal to %s.%s.", where, k)
				continue
			}
			var valid func(string) bool
			switch k {
			case "AWS":
				valid = func(s string) bool {
					return s == "*" || accountIDRE.MatchString(s) || principalARNRE.MatchString(s) || uniqueIDRE.MatchString(s)
				}
			case "Service":
				valid = func(s string) bool { return s == "*" || serviceRE.MatchString(s) }
			case "Federated":
				valid = func(s string) bool { return s != "" && !strings.ContainsAny(s, " \t\r\n") }
			case "CanonicalUser":
				valid = func(s string) bool { return canonicalRE.MatchString(s) }
			default:
				p.add(CheckPrincipalKey, "The principal key %s in %s is not valid. Use AWS, Service, Federated or CanonicalUser.", k, where)
				continue
			}
			for _, s := range vals {
				if !valid(s) {
					p.add(CheckPrincipalFormat, "The principal %q in %s.%s is not valid.", s, where, k)
				}
			}
			pr.Values[k] = vals
		}
		return pr
	}
	p.mismatch(where, "String or Object")
	return pr
}

func (p *parser) actions(where string, v any) []string {
	vals, ok := p.stringList(where, v)
	if !ok {
		return nil
	}
	if len(vals) == 0 {
		p.add(CheckMissingAction, "Add an action to %s.", where)
		return nil
	}
	svcName := p.opt.Service
	if svcName == "" {
		svcName = "service"
	}
	for _, a := range vals {
		if a == "*" {
			continue
		}
		svc, name, found := strings.Cut(a, ":")
		switch {
		case !found || svc == "" || name == "" || strings.ContainsAny(a, " \t\r\n"):
			p.add(CheckAction, "The action %s in %s does not exist. Write actions as %s:ActionName.", a, where, svcName)
		case p.opt.Service != "" && !strings.EqualFold(svc, p.opt.Service):
			p.add(CheckUnsupportedAction, "The action %s in %s is not supported for the resource-based policy attached to the resource type %s.", a, where, p.opt.ResourceType)
		case p.opt.Actions != nil && len(MatchingActions(p.opt.Actions, name)) == 0:
			p.add(CheckAction, "The action %s in %s does not exist.", a, where)
		}
	}
	return vals
}

// MatchingActions returns the names among actions that pattern (an action
// name without the service prefix, with * and ? wildcards) names,
// case-insensitively as IAM matches actions.
func MatchingActions(actions []string, pattern string) []string {
	var out []string
	lp := strings.ToLower(pattern)
	for _, a := range actions {
		if WildcardMatch(lp, strings.ToLower(a)) {
			out = append(out, a)
		}
	}
	return out
}

func (p *parser) resources(where string, v any) []string {
	vals, ok := p.stringList(where, v)
	if !ok {
		return nil
	}
	if len(vals) == 0 {
		p.add(CheckMissingResource, "Add a resource to %s.", where)
		return nil
	}
	for _, r := range vals {
		if r != "*" && !resourceARNRE.MatchString(r) {
			p.add(CheckResource, "The resource %s in %s is not valid. Use * or an ARN.", r, where)
		}
	}
	return vals
}

func (p *parser) conditions(where string, v any) []Condition {
	ops, ok := v.(map[string]any)
	if !ok {
		p.mismatch(where, "Object")
		return nil
	}
	var out []Condition
	for _, op := range sortedKeys(ops) {
		q, base, ifExists, ok := parseOperator(op)
		if !ok {
			p.add(CheckConditionOperator, "The condition operator %s in %s is not valid. Use a valid condition operator.", op, where)
			continue
		}
		keys, ok := ops[op].(map[string]any)
		if !ok {
			p.mismatch(where+"."+op, "Object")
			continue
		}
		for _, k := range sortedKeys(keys) {
			if k == "" || strings.ContainsAny(k, " \t\r\n") {
				p.add(CheckConditionKey, "The condition key %q in %s.%s is not valid.", k, where, op)
				continue
			}
			vals, ok := conditionValues(keys[k])
			if !ok {
				p.mismatch(where+"."+op+"."+k, "String, Number, Boolean or Array")
				continue
			}
			out = append(out, Condition{
				Operator: op, Key: k, Values: vals, vals: normalizeAll(vals),
				key: strings.ToLower(k), qualifier: q, base: base, ifExists: ifExists,
			})
		}
	}
	return out
}

// conditionValues reads a condition value: a string, number or boolean, or
// an array of them, as strings.
func conditionValues(v any) ([]string, bool) {
	one := func(e any) (string, bool) {
		switch x := e.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			if x {
				return "true", true
			}
			return "false", true
		}
		return "", false
	}
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := one(e)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	s, ok := one(v)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

// Wildcard reports whether e names every principal: "*" or a "*" among its
// AWS values.
func (e *PrincipalElement) Wildcard() bool {
	if e == nil {
		return false
	}
	if e.Any {
		return true
	}
	for _, v := range e.Values["AWS"] {
		if v == "*" {
			return true
		}
	}
	return false
}
