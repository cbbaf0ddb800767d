// Package iam parses, validates and evaluates AWS IAM policy documents: the
// identity-based policies of principals, KMS key policies and Secrets
// Manager resource policies.
//
// It is pure: no I/O, no storage, no service. Services build a [Request]
// (the action, the resource ARN, the principal and a [Context] that answers
// condition keys) and call [Authorize] with the policies they loaded; the
// [Result] says Allow, ExplicitDeny or ImplicitDeny, which kind of policy
// decided and the statement that did, so that an AccessDeniedException can
// say what AWS says.
//
// What lives here: the policy grammar ([Parse], with findings named like
// IAM Access Analyzer's checks), action, resource, principal and ARN
// matching with * and ? wildcards, every condition operator AWS documents
// (with IfExists, ForAnyValue: and ForAllValues:), policy variables, and
// the rules that combine identity-based and resource-based policies. What
// does not: which condition keys a service offers (the services answer
// them through Context) and the service's own error codes.
package iam
