package main

import (
	"net/http"
	"sort"
	"strings"
)

// readOnlyPrefixes are the operation-name prefixes of operations that do
// not change state, for CloudTrail's readOnly field. Cryptographic
// operations (Encrypt, Decrypt, Sign, Verify, GenerateRandom, ...) count as
// not read-only under this rule.
var readOnlyPrefixes = []string{"Describe", "Get", "List", "BatchGet", "Validate", "Lookup"}

// resourceMembers are the input members that name an operation's resource,
// most specific first: the first one an input has is its Resource member.
// Operations with none of them (CreateKey, ListKeys, ListSecrets,
// GetRandomPassword, ...) act on no existing resource.
var resourceMembers = []string{"SecretId", "KeyId", "TargetKeyId", "DestinationKeyId", "AliasName"}

// resourceMember returns the member of op's input that names its resource,
// or "".
func (g *gen) resourceMember(op string) string {
	mo := g.m.Operations[op]
	if mo.Input == nil {
		return ""
	}
	in := g.m.shape(mo.Input.Shape)
	for _, name := range resourceMembers {
		for _, mem := range in.Members {
			if mem.Name == name {
				return name
			}
		}
	}
	return ""
}

// genOps writes the constants, the Service interface, UnimplementedService,
// Operations and Errors.
func (g *gen) genOps(w *writer) {
	id := g.m.Metadata.ServiceID
	w.p("const (")
	w.p("// TargetPrefix is the X-Amz-Target prefix of the %s operations.", id)
	w.p("TargetPrefix = %q", g.m.Metadata.TargetPrefix)
	w.p("// ServiceID names the service in Keyfort's own messages.")
	w.p("ServiceID = %q", g.svc.ServiceID)
	w.p("// MaxBody is the largest request body accepted, in bytes.")
	w.p("// %s.", g.svc.MaxBodyDoc)
	w.p("MaxBody int64 = %s", g.svc.MaxBody)
	w.p(")")
	w.p("")

	g.genFacts(w)

	ops := g.m.operationNames()
	w.p("// Service is the %s API: one method per operation of the model.", id)
	w.p("// Methods return an *awserr.Error for anything the client may see.")
	w.p("type Service interface {")
	for _, op := range ops {
		w.p("// %s handles the %s operation.", op, op)
		w.p("%s(ctx context.Context, in *%sInput) (*%sOutput, error)", op, op, op)
	}
	w.p("}")
	w.p("")

	w.p("// UnimplementedService answers every operation with NotImplementedException")
	w.p("// (HTTP 501). Embed it in a service to implement operations one by one.")
	w.p("type UnimplementedService struct{}")
	w.p("")
	w.p("var _ Service = UnimplementedService{}")
	w.p("")
	for _, op := range ops {
		w.p("// %s returns NotImplementedException.", op)
		w.p("func (UnimplementedService) %s(context.Context, *%sInput) (*%sOutput, error) {", op, op, op)
		w.p("return nil, awserr.NotImplemented(ServiceID, %q)", op)
		w.p("}")
		w.p("")
	}

	signing := g.m.Metadata.SigningName
	if signing == "" {
		signing = g.m.Metadata.EndpointPrefix // SigV4's default signing name
	}
	if signing == "" {
		failf("model %s has no signingName", id)
	}
	w.p("// SigningName is the SigV4 signing name of the service and the prefix of")
	w.p("// its IAM actions.")
	w.p("const SigningName = %q", signing)
	w.p("")
	for _, op := range ops {
		w.p("// IAMAction returns the IAM action of %s: %q.", op, signing+":"+op)
		w.p("func (*%sInput) IAMAction() string { return %q }", op, signing+":"+op)
		w.p("")
	}

	w.p("// Operations returns the operation table of svc, sorted by name. ReadOnly is")
	w.p("// true for operations named Describe*, Get*, List*, BatchGet*, Validate* and\n// Lookup*.")
	w.p("func Operations(svc Service) []operation.Operation {")
	w.p("return []operation.Operation{")
	for _, op := range ops {
		mo := g.m.Operations[op]
		readOnly := false
		for _, p := range readOnlyPrefixes {
			if strings.HasPrefix(op, p) {
				readOnly = true
			}
		}
		var errs []string
		for _, e := range mo.Errors {
			if s := g.m.shape(e.Shape); !s.Exception {
				failf("operation %s: error %s is not an exception shape", op, e.Shape)
			}
			errs = append(errs, `"`+e.Shape+`"`)
		}
		w.p("{")
		w.p("Service: TargetPrefix,")
		w.p("Name: %q,", op)
		w.p("ReadOnly: %t,", readOnly)
		w.p("Action: %q,", signing+":"+op)
		if res := g.resourceMember(op); res != "" {
			w.p("Resource: %q,", res)
		}
		w.p("MaxBody: MaxBody,")
		if len(errs) > 0 {
			w.p("Errors: []string{%s},", strings.Join(errs, ", "))
		}
		w.p("NewInput: func() operation.Input { return new(%sInput) },", op)
		w.p("Invoke: func(ctx context.Context, in operation.Input) (operation.Output, error) {")
		w.p("x, ok := in.(*%sInput)", op)
		w.p("if !ok {")
		w.p("return nil, fmt.Errorf(\"%s: %s: input is %%T, want *%sInput\", in)", g.svc.Package, op, op)
		w.p("}")
		w.p("out, err := svc.%s(ctx, x)", op)
		w.p("if err != nil {")
		w.p("return nil, err")
		w.p("}")
		w.p("return out, nil")
		w.p("},")
		w.p("},")
	}
	w.p("}")
	w.p("}")
	w.p("")

	var exc []*shape
	for _, s := range g.m.Shapes {
		if s.Exception {
			exc = append(exc, s)
		}
	}
	sort.Slice(exc, func(i, j int) bool { return exc[i].Name < exc[j].Name })
	w.p("// Errors describes every exception of the %s model, by code.", id)
	w.p("var Errors = map[string]operation.ErrorShape{")
	for _, s := range exc {
		status := http.StatusBadRequest
		if s.Fault {
			status = http.StatusInternalServerError
		}
		code := s.Name
		if s.Error != nil {
			if s.Error.HTTPStatusCode != 0 {
				status = s.Error.HTTPStatusCode
			}
			if s.Error.Code != "" {
				code = s.Error.Code
			}
		}
		field := ""
		for _, mem := range s.Members {
			if strings.EqualFold(mem.Name, "message") {
				field = mem.Name
			}
		}
		if field == "" && len(s.Members) == 0 {
			field = g.svc.MessageField // the model lists the exception without members
		}
		if field == "" {
			failf("exception %s has no message member", s.Name)
		}
		w.p("%q: {Code: %q, Status: %d, Fault: %t, MessageField: %q},", s.Name, code, status, s.Fault, field)
	}
	w.p("}")
}

// internalFailure is AWS's common error for a request that failed for an
// unknown reason (HTTP 500), which every AWS JSON service may answer: the
// internal error of a service whose model declares no fault.
const internalFailure = "InternalFailure"

// genFacts writes Facts(), the service's description for the server: the
// target prefix and signing name from the model's metadata, the message
// member its exceptions share, and the table's event source, internal error
// code and operations without responseElements, each checked against the
// model.
func (g *gen) genFacts(w *writer) {
	md := g.m.Metadata
	signing := md.SigningName
	if signing == "" {
		signing = md.EndpointPrefix // SigV4 signs with the endpoint prefix when the model names no signing name
	}
	if md.TargetPrefix == "" || signing == "" {
		failf("model has no target prefix or signing name")
	}
	spellings := map[string]bool{}
	for _, s := range g.m.Shapes {
		if !s.Exception {
			continue
		}
		for _, mem := range s.Members {
			if strings.EqualFold(mem.Name, "message") {
				spellings[mem.Name] = true
			}
		}
	}
	var messageField string
	for k := range spellings {
		messageField = k
	}
	switch {
	case len(spellings) == 0 && g.svc.MessageField != "":
		messageField = g.svc.MessageField
	case len(spellings) != 1:
		failf("the model's exceptions spell their message member %d ways, want one", len(spellings))
	case g.svc.MessageField != "" && g.svc.MessageField != messageField:
		failf("service %s: MessageField %q, but the model's exceptions spell it %q", g.svc.Package, g.svc.MessageField, messageField)
	}
	if g.svc.EventSource == "" {
		failf("service %s has no event source", g.svc.Package)
	}
	if g.svc.InternalErrorCode == internalFailure {
		for _, s := range g.m.Shapes {
			if s.Exception && s.Fault {
				failf("internal error code %s: the model declares the fault %s, use it", internalFailure, s.Name)
			}
		}
	} else if s, ok := g.m.Shapes[g.svc.InternalErrorCode]; !ok || !s.Exception || !s.Fault {
		failf("internal error code %q is not a fault of the model", g.svc.InternalErrorCode)
	}
	for _, op := range g.svc.NoResponseElements {
		if _, ok := g.m.Operations[op]; !ok {
			failf("NoResponseElements names %q, which is not an operation of the model", op)
		}
	}
	w.p("// Facts describes the %s service to the server.", md.ServiceID)
	w.p("func Facts() operation.Facts {")
	w.p("return operation.Facts{")
	w.p("TargetPrefix: %q,", md.TargetPrefix)
	if i := strings.LastIndexByte(md.TargetPrefix, '.'); i >= 0 {
		// botocore's qualified prefix; Smithy-generated SDKs send the
		// service name alone.
		w.p("TargetAliases: []string{%q},", md.TargetPrefix[i+1:])
	}
	w.p("SigningName: %q,", signing)
	w.p("EventSource: %q,", g.svc.EventSource)
	w.p("MessageField: %q,", messageField)
	w.p("InternalErrorCode: %q,", g.svc.InternalErrorCode)
	w.p("NoResponseElements: []string{")
	for _, op := range g.svc.NoResponseElements {
		w.p("%q,", op)
	}
	w.p("},")
	w.p("}")
	w.p("}")
	w.p("")
}
