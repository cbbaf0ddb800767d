package secretsmanager

// This file parses and checks resource policy documents (the JSON a client
// gives PutResourcePolicy and ValidateResourcePolicy). It depends only on the
// standard library and on nothing else in this package, so that it can move
// to internal/iam when that package exists.
//
// Three kinds of result:
//   - a document that is not JSON is a *policySyntaxError;
//   - a JSON document that breaks the policy grammar (a missing Effect, an
//     unknown action, an unknown condition operator, ...) parses into as
//     much of a policyDocument as can be read, plus policyFindings named
//     like IAM Access Analyzer's policy checks (MISSING_EFFECT,
//     INVALID_ACTION, ...);
//   - policyDocument.public and policyDocument.lockout answer the two
//     semantic checks Secrets Manager runs (broad access, lock-out).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Policy check names (ValidationErrorsEntry.CheckName). The grammar checks
// use IAM Access Analyzer's issue codes; BROAD_ACCESS and LOCKOUT are the
// two semantic checks ValidateResourcePolicy documents.
const (
	checkDataType          = "DATA_TYPE_MISMATCH"
	checkPolicyElement     = "INVALID_POLICY_ELEMENT"
	checkVersion           = "INVALID_VERSION"
	checkMissingStatement  = "MISSING_STATEMENT"
	checkMissingEffect     = "MISSING_EFFECT"
	checkEffect            = "INVALID_EFFECT"
	checkMissingPrincipal  = "MISSING_PRINCIPAL"
	checkPrincipalKey      = "INVALID_PRINCIPAL_KEY"
	checkPrincipalFormat   = "INVALID_PRINCIPAL_FORMAT"
	checkMissingAction     = "MISSING_ACTION"
	checkAction            = "INVALID_ACTION"
	checkUnsupportedAction = "UNSUPPORTED_ACTION_IN_POLICY"
	checkMissingResource   = "MISSING_RESOURCE"
	checkResource          = "INVALID_ARN_RESOURCE"
	checkConditionOperator = "INVALID_CONDITION_OPERATOR"
	checkConditionKey      = "INVALID_CONDITION_KEY_FORMAT"
	checkBroadAccess       = "BROAD_ACCESS"
	checkLockout           = "LOCKOUT"
)

// Policy versions the grammar accepts.
const (
	policyVersion2012 = "2012-10-17"
	policyVersion2008 = "2008-10-17"
)

// secretsManagerActions are the actions a secret's resource policy may name
// (without the "secretsmanager:" prefix), from the Secrets Manager service
// authorization reference.
var secretsManagerActions = [...]string{
	"BatchGetSecretValue", "CancelRotateSecret", "CreateSecret", "DeleteResourcePolicy",
	"DeleteSecret", "DescribeSecret", "GetRandomPassword", "GetResourcePolicy",
	"GetSecretValue", "ListSecretVersionIds", "ListSecrets", "PutResourcePolicy",
	"PutSecretValue", "RemoveRegionsFromReplication", "ReplicateSecretToRegions",
	"RestoreSecret", "RotateSecret", "StopReplicationToReplica", "TagResource",
	"UntagResource", "UpdateSecret", "UpdateSecretVersionStage", "ValidateResourcePolicy",
}

// conditionOperators are IAM's condition operators (before an IfExists
// suffix and a ForAnyValue:/ForAllValues: qualifier).
var conditionOperators = [...]string{
	"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
	"StringLike", "StringNotLike",
	"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
	"NumericGreaterThan", "NumericGreaterThanEquals",
	"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
	"DateGreaterThan", "DateGreaterThanEquals",
	"Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
	"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
	"Null",
}

// policyDocument is a parsed resource policy. Statements hold what could be
// read even when the document has findings.
type policyDocument struct {
	Version    string
	ID         string
	Statements []policyStatement
}

// policyStatement is one statement. Action and the other lists hold the
// values as written; a single string becomes a one-element list.
type policyStatement struct {
	Sid          string
	Effect       string
	Principal    *policyPrincipal
	NotPrincipal *policyPrincipal
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []policyCondition
}

// policyPrincipal is a Principal or NotPrincipal element: "*" (Any), or a
// map from principal type (AWS, Service, Federated, CanonicalUser) to
// values.
type policyPrincipal struct {
	Any    bool
	Values map[string][]string
}

// policyCondition is one condition key under one operator.
type policyCondition struct {
	Operator string
	Key      string
	Values   []string
}

// policyFinding is one grammar problem.
type policyFinding struct {
	Check   string
	Message string
}

// policySyntaxError reports a document that is not one JSON value.
type policySyntaxError struct {
	Offset int64
}

func (e *policySyntaxError) Error() string {
	return fmt.Sprintf("Fix the JSON syntax error at index %d.", e.Offset)
}

// parsePolicy parses a policy document. It returns a *policySyntaxError when
// text is not JSON; otherwise the document and its grammar findings (none
// for a valid policy), in document order.
func parsePolicy(text string) (*policyDocument, []policyFinding, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, nil, &policySyntaxError{Offset: syntaxOffset(err, dec)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, &policySyntaxError{Offset: dec.InputOffset()}
	}
	p := &policyParser{}
	doc := p.document(root)
	return doc, p.findings, nil
}

func syntaxOffset(err error, dec *json.Decoder) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return dec.InputOffset()
}

type policyParser struct {
	findings []policyFinding
}

func (p *policyParser) add(check, format string, args ...any) {
	p.findings = append(p.findings, policyFinding{Check: check, Message: fmt.Sprintf(format, args...)})
}

func (p *policyParser) mismatch(where, want string) {
	p.add(checkDataType, "The text does not match the expected JSON data type %s at %s.", want, where)
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

func (p *policyParser) document(root any) *policyDocument {
	doc := &policyDocument{}
	obj, ok := root.(map[string]any)
	if !ok {
		p.mismatch("the top level of the policy", "Object")
		return doc
	}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "Version", "Id", "Statement":
		default:
			p.add(checkPolicyElement, "The policy element %s is not valid.", k)
		}
	}
	if v, ok := obj["Version"]; ok {
		s, isStr := v.(string)
		switch {
		case !isStr:
			p.mismatch("Version", "String")
		case s != policyVersion2012 && s != policyVersion2008:
			p.add(checkVersion, "The %s version is not valid. Use one of the following versions: %s, %s.", s, policyVersion2012, policyVersion2008)
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
		p.add(checkMissingStatement, "Add a Statement element to the policy.")
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
		p.add(checkMissingStatement, "Add a statement to the Statement element of the policy.")
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

func (p *policyParser) statement(where string, m map[string]any) policyStatement {
	var st policyStatement
	for _, k := range sortedKeys(m) {
		switch k {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			p.add(checkPolicyElement, "The policy element %s in %s is not valid.", k, where)
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
		p.add(checkMissingEffect, "Add an Effect element to %s with a value of Allow or Deny.", where)
	} else if s, isStr := v.(string); !isStr {
		p.mismatch(where+".Effect", "String")
	} else if s != "Allow" && s != "Deny" {
		p.add(checkEffect, "The Effect element of %s can be Allow or Deny, not %q.", where, s)
	} else {
		st.Effect = s
	}

	// Principal / NotPrincipal: exactly one, as in every resource policy.
	_, hasP := m["Principal"]
	_, hasNP := m["NotPrincipal"]
	switch {
	case hasP && hasNP:
		p.add(checkPolicyElement, "%s can't contain both Principal and NotPrincipal.", where)
	case !hasP && !hasNP:
		p.add(checkMissingPrincipal, "Add a Principal element to %s.", where)
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
		p.add(checkPolicyElement, "%s can't contain both Action and NotAction.", where)
	case !hasA && !hasNA:
		p.add(checkMissingAction, "Add an Action or NotAction element to %s.", where)
	case hasA:
		st.Action = p.actions(where+".Action", m["Action"])
	default:
		st.NotAction = p.actions(where+".NotAction", m["NotAction"])
	}

	// Resource / NotResource.
	_, hasR := m["Resource"]
	_, hasNR := m["NotResource"]
	switch {
	case hasR && hasNR:
		p.add(checkPolicyElement, "%s can't contain both Resource and NotResource.", where)
	case !hasR && !hasNR:
		p.add(checkMissingResource, "Add a Resource or NotResource element to %s.", where)
	case hasR:
		st.Resource = p.resources(where+".Resource", m["Resource"])
	default:
		st.NotResource = p.resources(where+".NotResource", m["NotResource"])
	}

	if v, ok := m["Condition"]; ok {
		st.Conditions = p.conditions(where+".Condition", v)
	}
	return st
}

// stringList reads a string or a non-empty array of strings.
func (p *policyParser) stringList(where string, v any) ([]string, bool) {
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

func (p *policyParser) principal(where string, v any) *policyPrincipal {
	pr := &policyPrincipal{}
	switch x := v.(type) {
	case string:
		if x != "*" {
			p.add(checkPrincipalFormat, "The %s element must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}, not %q.", where, x)
			return pr
		}
		pr.Any = true
		return pr
	case map[string]any:
		if len(x) == 0 {
			p.add(checkMissingPrincipal, "Add a principal to the %s element.", where)
			return pr
		}
		pr.Values = make(map[string][]string, len(x))
		for _, k := range sortedKeys(x) {
			vals, ok := p.stringList(where+"."+k, x[k])
			if !ok {
				continue
			}
			if len(vals) == 0 {
				p.add(checkMissingPrincipal, "Add a principal to %s.%s.", where, k)
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
				p.add(checkPrincipalKey, "The principal key %s in %s is not valid. Use AWS, Service, Federated or CanonicalUser.", k, where)
				continue
			}
			for _, s := range vals {
				if !valid(s) {
					p.add(checkPrincipalFormat, "The principal %q in %s.%s is not valid.", s, where, k)
				}
			}
			pr.Values[k] = vals
		}
		return pr
	}
	p.mismatch(where, "String or Object")
	return pr
}

func (p *policyParser) actions(where string, v any) []string {
	vals, ok := p.stringList(where, v)
	if !ok {
		return nil
	}
	if len(vals) == 0 {
		p.add(checkMissingAction, "Add an action to %s.", where)
		return nil
	}
	for _, a := range vals {
		if a == "*" {
			continue
		}
		svc, name, found := strings.Cut(a, ":")
		switch {
		case !found || svc == "" || name == "":
			p.add(checkAction, "The action %s in %s does not exist. Write actions as secretsmanager:ActionName.", a, where)
		case !strings.EqualFold(svc, "secretsmanager"):
			p.add(checkUnsupportedAction, "The action %s in %s is not supported for the resource-based policy attached to the resource type AWS::SecretsManager::Secret.", a, where)
		case len(matchingActions(name)) == 0:
			p.add(checkAction, "The action %s in %s does not exist.", a, where)
		}
	}
	return vals
}

// matchingActions returns the Secrets Manager actions that pattern (an
// action name without the service prefix, with * and ? wildcards) names,
// case-insensitively as IAM matches actions.
func matchingActions(pattern string) []string {
	var out []string
	for _, a := range secretsManagerActions {
		if wildcardMatch(strings.ToLower(pattern), strings.ToLower(a)) {
			out = append(out, a)
		}
	}
	return out
}

// wildcardMatch matches s against pattern, where * matches any run of
// characters and ? any one character. It runs in O(len(pattern)*len(s)).
func wildcardMatch(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case starP >= 0:
			px = starP + 1
			starS++
			sx = starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

func (p *policyParser) resources(where string, v any) []string {
	vals, ok := p.stringList(where, v)
	if !ok {
		return nil
	}
	if len(vals) == 0 {
		p.add(checkMissingResource, "Add a resource to %s.", where)
		return nil
	}
	for _, r := range vals {
		if r != "*" && !resourceARNRE.MatchString(r) {
			p.add(checkResource, "The resource %s in %s is not valid. Use * or an ARN.", r, where)
		}
	}
	return vals
}

// splitOperator splits a condition operator into its qualifier
// (ForAnyValue/ForAllValues or ""), base operator and IfExists suffix.
func splitOperator(op string) (qualifier, base string, ifExists bool) {
	base = op
	if q, rest, ok := strings.Cut(op, ":"); ok {
		qualifier, base = q, rest
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = b, true
	}
	return qualifier, base, ifExists
}

func validOperator(op string) bool {
	q, base, ifExists := splitOperator(op)
	if q != "" && q != "ForAnyValue" && q != "ForAllValues" {
		return false
	}
	if base == "Null" && ifExists {
		return false
	}
	for _, o := range conditionOperators {
		if o == base {
			return true
		}
	}
	return false
}

func (p *policyParser) conditions(where string, v any) []policyCondition {
	ops, ok := v.(map[string]any)
	if !ok {
		p.mismatch(where, "Object")
		return nil
	}
	var out []policyCondition
	for _, op := range sortedKeys(ops) {
		if !validOperator(op) {
			p.add(checkConditionOperator, "The condition operator %s in %s is not valid. Use a valid condition operator.", op, where)
			continue
		}
		keys, ok := ops[op].(map[string]any)
		if !ok {
			p.mismatch(where+"."+op, "Object")
			continue
		}
		for _, k := range sortedKeys(keys) {
			if k == "" || strings.ContainsAny(k, " \t\r\n") {
				p.add(checkConditionKey, "The condition key %q in %s.%s is not valid.", k, where, op)
				continue
			}
			vals, ok := conditionValues(keys[k])
			if !ok {
				p.mismatch(where+"."+op+"."+k, "String, Number, Boolean or Array")
				continue
			}
			out = append(out, policyCondition{Operator: op, Key: k, Values: vals})
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

// restrictingKeys are the global condition keys that, compared with fixed
// values, limit a statement with a wildcard principal to known accounts,
// organizations, resources or networks (lower case). Secrets Manager's
// guide names aws:SourceArn, aws:SourceVpc, aws:SourceVpce and
// aws:SourceAccount; the others restrict in the same way for Zelkova.
var restrictingKeys = map[string]bool{
	"aws:sourceaccount":     true,
	"aws:sourcearn":         true,
	"aws:sourceowner":       true,
	"aws:sourcevpc":         true,
	"aws:sourcevpce":        true,
	"aws:sourceorgid":       true,
	"aws:sourceorgpaths":    true,
	"aws:sourceip":          true,
	"aws:principalaccount":  true,
	"aws:principalarn":      true,
	"aws:principalorgid":    true,
	"aws:principalorgpaths": true,
	"aws:userid":            true,
}

// restricts reports whether c limits who can use a statement: a positive
// operator (no Not, no IfExists, no ForAllValues, which an absent key
// satisfies) on a restricting key, with fixed values.
func (c policyCondition) restricts() bool {
	if !restrictingKeys[strings.ToLower(c.Key)] || len(c.Values) == 0 {
		return false
	}
	q, base, ifExists := splitOperator(c.Operator)
	if ifExists || q == "ForAllValues" {
		return false
	}
	like := false
	switch base {
	case "StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "IpAddress":
	case "StringLike", "ArnLike":
		like = true
	default:
		return false
	}
	for _, v := range c.Values {
		if v == "" || v == "*" || (like && strings.ContainsAny(v, "*?")) {
			return false
		}
		if base == "IpAddress" && (strings.HasSuffix(v, "/0") || !strings.Contains(v, ".") && !strings.Contains(v, ":")) {
			return false
		}
	}
	return true
}

// wildcard reports whether pr names every principal: "*" or a "*" among
// its AWS values.
func (pr *policyPrincipal) wildcard() bool {
	if pr == nil {
		return false
	}
	if pr.Any {
		return true
	}
	for _, v := range pr.Values["AWS"] {
		if v == "*" {
			return true
		}
	}
	return false
}

// public returns the index of the first statement that grants broad
// access: an Allow for a wildcard principal (or a NotPrincipal, which
// allows everyone else) without a condition that restricts it. It returns
// -1 when the policy is not public.
func (d *policyDocument) public() int {
	for i, st := range d.Statements {
		if st.Effect != "Allow" {
			continue
		}
		if !st.Principal.wildcard() && st.NotPrincipal == nil {
			continue
		}
		restricted := false
		for _, c := range st.Conditions {
			if c.restricts() {
				restricted = true
				break
			}
		}
		if !restricted {
			return i
		}
	}
	return -1
}

// lockout returns the index of the first statement that denies every
// principal, without condition, the right to change the policy
// (secretsmanager:PutResourcePolicy or DeleteResourcePolicy) on every
// resource; -1 if none does.
func (d *policyDocument) lockout() int {
	for i, st := range d.Statements {
		if st.Effect != "Deny" || !st.Principal.wildcard() || len(st.Conditions) > 0 {
			continue
		}
		if !coversAll(st.Resource) || st.NotResource != nil {
			continue
		}
		if deniesPolicyChange(st.Action, st.NotAction) {
			return i
		}
	}
	return -1
}

func coversAll(resources []string) bool {
	for _, r := range resources {
		if r == "*" {
			return true
		}
	}
	return false
}

func deniesPolicyChange(action, notAction []string) bool {
	names := []string{"PutResourcePolicy", "DeleteResourcePolicy"}
	matches := func(list []string, name string) bool {
		for _, a := range list {
			if a == "*" {
				return true
			}
			svc, pat, ok := strings.Cut(a, ":")
			if ok && strings.EqualFold(svc, "secretsmanager") && wildcardMatch(strings.ToLower(pat), strings.ToLower(name)) {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		if action != nil && matches(action, n) {
			return true
		}
		if notAction != nil && !matches(notAction, n) {
			return true
		}
	}
	return false
}
