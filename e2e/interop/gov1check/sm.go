package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/secretsmanager"
)

const rotationLambda = "arn:aws:lambda:us-east-1:123456789012:function:gov1-rotate"

// rotationHook answers Keyfort's rotation steps as a rotation Lambda does,
// calling Keyfort back through the v1 client.
type rotationHook struct {
	sm    *secretsmanager.SecretsManager
	mu    sync.Mutex
	steps []string
}

func (h *rotationHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct{ Step, SecretId, ClientRequestToken, RotationToken string }
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.steps = append(h.steps, ev.Step)
	h.mu.Unlock()
	if err := h.step(ev.Step, ev.SecretId, ev.ClientRequestToken, ev.RotationToken); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *rotationHook) step(step, arn, token, rotationToken string) error {
	d, err := h.sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return err
	}
	stages := aws.StringValueSlice(d.VersionIdsToStages[token])
	if slices.Contains(stages, "AWSCURRENT") {
		return nil
	}
	if !slices.Contains(stages, "AWSPENDING") {
		return errors.New("version not AWSPENDING")
	}
	switch step {
	case "createSecret":
		_, err := h.sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING")})
		var ae awserr.Error
		if err == nil {
			return nil
		}
		if !errors.As(err, &ae) || ae.Code() != secretsmanager.ErrCodeResourceNotFoundException {
			return err
		}
		pw, err := h.sm.GetRandomPassword(&secretsmanager.GetRandomPasswordInput{ExcludePunctuation: aws.Bool(true)})
		if err != nil {
			return err
		}
		_, err = h.sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token),
			SecretString: aws.String("rotated:" + aws.StringValue(pw.RandomPassword)), VersionStages: aws.StringSlice([]string{"AWSPENDING"}),
			RotationToken: aws.String(rotationToken)})
		return err
	case "setSecret", "testSecret":
		return nil
	case "finishSecret":
		current := ""
		for id, st := range d.VersionIdsToStages {
			if slices.Contains(aws.StringValueSlice(st), "AWSCURRENT") {
				current = id
			}
		}
		_, err := h.sm.UpdateSecretVersionStage(&secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn),
			VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(current)})
		return err
	}
	return fmt.Errorf("unknown step %q", step)
}

func smTags(kv ...string) []*secretsmanager.Tag {
	var t []*secretsmanager.Tag
	for i := 0; i < len(kv); i += 2 {
		t = append(t, &secretsmanager.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return t
}

func runSM(c *checker, sm *secretsmanager.SecretsManager, webhook string) {
	fmt.Println("== Secrets Manager (aws-sdk-go v1 service/secretsmanager)")
	cs := chk(sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String("gov1/db"), SecretString: aws.String(`{"user":"a","pass":"1"}`),
		Description: aws.String("gov1 string"), Tags: smTags("team", "interop")}))(c, "CreateSecret")
	arn := aws.StringValue(cs.ARN)
	c.want(strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:"+account+":secret:gov1/db-") && len(arn) == len("arn:aws:secretsmanager:us-east-1:"+account+":secret:gov1/db-")+6 &&
		aws.StringValue(cs.Name) == "gov1/db" && len(aws.StringValue(cs.VersionId)) == 36, "CreateSecret: %v", cs)
	v1 := *cs.VersionId
	bin := []byte{0, 1, 2, 0xfe, 0xff, 'b'}
	cb := chk(sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String("gov1/bin"), SecretBinary: bin}))(c, "CreateSecret binary")
	c.pass("CreateSecret string (%s) and binary (%s)", arn, aws.StringValue(cb.ARN))
	g := chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String("gov1/db")}))(c, "GetSecretValue")
	c.want(aws.StringValue(g.SecretString) == `{"user":"a","pass":"1"}` && g.SecretBinary == nil && aws.StringValue(g.ARN) == arn && aws.StringValue(g.VersionId) == v1 &&
		g.CreatedDate != nil && slices.Equal(aws.StringValueSlice(g.VersionStages), []string{"AWSCURRENT"}), "GetSecretValue: %v", g)
	gb := chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: cb.ARN, VersionStage: aws.String("AWSCURRENT")}))(c, "GetSecretValue binary")
	c.want(bytes.Equal(gb.SecretBinary, bin) && gb.SecretString == nil, "GetSecretValue binary: %v", gb.SecretBinary)
	c.pass("GetSecretValue: SecretString, SecretBinary (the same bytes), CreatedDate %s, VersionStages [AWSCURRENT]", g.CreatedDate.Format(time.RFC3339))

	tok := "00000000-0000-4000-8000-00000000gov1"
	p := chk(sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String("gov1/db"), ClientRequestToken: aws.String(tok), SecretString: aws.String("v2")}))(c, "PutSecretValue")
	c.want(aws.StringValue(p.VersionId) == tok && aws.StringValue(p.ARN) == arn && slices.Equal(aws.StringValueSlice(p.VersionStages), []string{"AWSCURRENT"}), "PutSecretValue: %v", p)
	p2 := chk(sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String("gov1/db"), ClientRequestToken: aws.String(tok), SecretString: aws.String("v2")}))(c, "PutSecretValue again")
	c.want(aws.StringValue(p2.VersionId) == tok, "PutSecretValue retry: %v", p2)
	_, err := sm.PutSecretValue(&secretsmanager.PutSecretValueInput{SecretId: aws.String("gov1/db"), ClientRequestToken: aws.String(tok), SecretString: aws.String("other")})
	c.wantErr("PutSecretValue reusing a token with another value", err, "ResourceExistsException", "-", 400)
	u := chk(sm.UpdateSecret(&secretsmanager.UpdateSecretInput{SecretId: aws.String("gov1/db"), Description: aws.String("changed"), SecretString: aws.String("v3")}))(c, "UpdateSecret")
	v3 := aws.StringValue(u.VersionId)
	c.want(aws.StringValue(u.ARN) == arn && v3 != "" && v3 != tok, "UpdateSecret: %v", u)
	g = chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSPREVIOUS")}))(c, "GetSecretValue AWSPREVIOUS")
	c.want(aws.StringValue(g.SecretString) == "v2" && aws.StringValue(g.VersionId) == tok, "AWSPREVIOUS: %v", g)
	g = chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(v1)}))(c, "GetSecretValue by VersionId")
	c.want(aws.StringValue(g.SecretString) == `{"user":"a","pass":"1"}` && len(g.VersionStages) == 0, "by VersionId: %v", g)
	c.pass("PutSecretValue with a ClientRequestToken (idempotent retry; another value under it: ResourceExistsException), UpdateSecret (Description + value), GetSecretValue by AWSPREVIOUS and by VersionId")

	chk(sm.UpdateSecretVersionStage(&secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String("BLUE"), MoveToVersionId: aws.String(v1)}))(c, "UpdateSecretVersionStage")
	d := chk(sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String("gov1/db")}))(c, "DescribeSecret")
	c.want(aws.StringValue(d.ARN) == arn && aws.StringValue(d.Description) == "changed" && d.CreatedDate != nil && d.LastChangedDate != nil && d.LastAccessedDate != nil &&
		slices.Equal(aws.StringValueSlice(d.VersionIdsToStages[v1]), []string{"BLUE"}) && slices.Contains(aws.StringValueSlice(d.VersionIdsToStages[v3]), "AWSCURRENT") &&
		len(d.Tags) == 1, "DescribeSecret: %v", d)
	c.pass("UpdateSecretVersionStage (BLUE onto the first version), DescribeSecret: Description, Created/LastChanged/LastAccessedDate, VersionIdsToStages, Tags")
	var vers []*secretsmanager.SecretVersionsListEntry
	pages := 0
	c.ok("ListSecretVersionIdsPages", sm.ListSecretVersionIdsPages(&secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), MaxResults: aws.Int64(1), IncludeDeprecated: aws.Bool(true)},
		func(p *secretsmanager.ListSecretVersionIdsOutput, last bool) bool {
			pages++
			vers = append(vers, p.Versions...)
			c.want(aws.StringValue(p.ARN) == arn && aws.StringValue(p.Name) == "gov1/db", "ListSecretVersionIds page: ARN %v Name %v", p.ARN, p.Name)
			return true
		}))
	c.want(len(vers) == 3 && pages == 3, "ListSecretVersionIdsPages: %d versions in %d pages", len(vers), pages)
	for _, v := range vers {
		c.want(v.CreatedDate != nil && aws.StringValue(v.VersionId) != "", "version entry %v", v)
	}
	chk(sm.UpdateSecretVersionStage(&secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String("BLUE"), RemoveFromVersionId: aws.String(v1)}))(c, "UpdateSecretVersionStage remove")
	c.pass("ListSecretVersionIdsPages MaxResults 1, IncludeDeprecated: 3 versions in 3 pages; UpdateSecretVersionStage removes BLUE")

	for i := 0; i < 5; i++ {
		chk(sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprintf("gov1/list/%d", i)), SecretString: aws.String(fmt.Sprintf("value-%d", i))}))(c, "CreateSecret")
	}
	var secrets []*secretsmanager.SecretListEntry
	pages = 0
	c.ok("ListSecretsPages", sm.ListSecretsPages(&secretsmanager.ListSecretsInput{MaxResults: aws.Int64(2)}, func(p *secretsmanager.ListSecretsOutput, last bool) bool {
		pages++
		secrets = append(secrets, p.SecretList...)
		return true
	}))
	c.want(len(secrets) == 7 && pages == 4, "ListSecretsPages MaxResults 2: %d secrets in %d pages", len(secrets), pages)
	var filtered []*secretsmanager.SecretListEntry
	c.ok("ListSecretsPages Filters", sm.ListSecretsPages(&secretsmanager.ListSecretsInput{MaxResults: aws.Int64(2), Filters: []*secretsmanager.Filter{{Key: aws.String("name"), Values: aws.StringSlice([]string{"gov1/list/"})}}},
		func(p *secretsmanager.ListSecretsOutput, last bool) bool {
			filtered = append(filtered, p.SecretList...)
			return true
		}))
	c.want(len(filtered) == 5, "ListSecretsPages name filter: %d", len(filtered))
	for _, s := range secrets {
		c.want(s.ARN != nil && s.Name != nil && s.CreatedDate != nil && s.LastChangedDate != nil, "ListSecrets entry %v", s)
	}
	c.pass("ListSecretsPages MaxResults 2: 7 secrets in 4 pages; with a name filter: 5")
	var vals []*secretsmanager.SecretValueEntry
	var errs []*secretsmanager.APIErrorType
	c.ok("BatchGetSecretValuePages ids", sm.BatchGetSecretValuePages(&secretsmanager.BatchGetSecretValueInput{SecretIdList: aws.StringSlice([]string{"gov1/db", "gov1/bin", "gov1/nope"})},
		func(p *secretsmanager.BatchGetSecretValueOutput, last bool) bool {
			vals = append(vals, p.SecretValues...)
			errs = append(errs, p.Errors...)
			return true
		}))
	c.want(len(vals) == 2 && len(errs) == 1 && aws.StringValue(errs[0].ErrorCode) == "ResourceNotFoundException" && aws.StringValue(errs[0].SecretId) == "gov1/nope", "BatchGetSecretValue: %v %v", vals, errs)
	vals = nil
	pages = 0
	c.ok("BatchGetSecretValuePages filters", sm.BatchGetSecretValuePages(&secretsmanager.BatchGetSecretValueInput{MaxResults: aws.Int64(2), Filters: []*secretsmanager.Filter{{Key: aws.String("name"), Values: aws.StringSlice([]string{"gov1/list/"})}}},
		func(p *secretsmanager.BatchGetSecretValueOutput, last bool) bool {
			pages++
			vals = append(vals, p.SecretValues...)
			return true
		}))
	c.want(len(vals) == 5 && pages == 3, "BatchGetSecretValuePages Filters MaxResults 2: %d values in %d pages", len(vals), pages)
	c.pass("BatchGetSecretValuePages by ids (2 values, Errors [gov1/nope ResourceNotFoundException]) and by Filters (MaxResults 2: 5 values in 3 pages)")

	chk(sm.TagResource(&secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: smTags("a", "1", "b", "2")}))(c, "TagResource")
	chk(sm.UntagResource(&secretsmanager.UntagResourceInput{SecretId: aws.String(arn), TagKeys: aws.StringSlice([]string{"a"})}))(c, "UntagResource")
	d = chk(sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}))(c, "DescribeSecret")
	c.want(len(d.Tags) == 2, "tags after TagResource/UntagResource: %v", d.Tags)
	c.pass("TagResource, UntagResource")
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	vp := chk(sm.ValidateResourcePolicy(&secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String(arn), ResourcePolicy: aws.String(pol)}))(c, "ValidateResourcePolicy")
	c.want(aws.BoolValue(vp.PolicyValidationPassed), "ValidateResourcePolicy: %v", vp)
	pp := chk(sm.PutResourcePolicy(&secretsmanager.PutResourcePolicyInput{SecretId: aws.String(arn), ResourcePolicy: aws.String(pol)}))(c, "PutResourcePolicy")
	c.want(aws.StringValue(pp.ARN) == arn && aws.StringValue(pp.Name) == "gov1/db", "PutResourcePolicy: %v", pp)
	gp := chk(sm.GetResourcePolicy(&secretsmanager.GetResourcePolicyInput{SecretId: aws.String(arn)}))(c, "GetResourcePolicy")
	c.want(aws.StringValue(gp.ResourcePolicy) != "" && aws.StringValue(gp.ARN) == arn, "GetResourcePolicy: %v", gp)
	chk(sm.DeleteResourcePolicy(&secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(arn)}))(c, "DeleteResourcePolicy")
	gp = chk(sm.GetResourcePolicy(&secretsmanager.GetResourcePolicyInput{SecretId: aws.String(arn)}))(c, "GetResourcePolicy")
	c.want(gp.ResourcePolicy == nil, "after DeleteResourcePolicy: %v", gp.ResourcePolicy)
	c.pass("ValidateResourcePolicy (PolicyValidationPassed), PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy (then no ResourcePolicy)")
	rp := chk(sm.GetRandomPassword(&secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(40), ExcludePunctuation: aws.Bool(true)}))(c, "GetRandomPassword")
	c.want(len(aws.StringValue(rp.RandomPassword)) == 40, "GetRandomPassword: %d chars", len(aws.StringValue(rp.RandomPassword)))
	c.pass("GetRandomPassword 40 characters")

	// ---- rotation through the webhook --------------------------------------
	if webhook != "" {
		h := &rotationHook{sm: sm}
		ln, err := net.Listen("tcp", webhook)
		c.ok("webhook listen", err)
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		rs := chk(sm.RotateSecret(&secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(rotationLambda),
			RotationRules: &secretsmanager.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}}))(c, "RotateSecret")
		c.want(aws.StringValue(rs.ARN) == arn && aws.StringValue(rs.VersionId) != "", "RotateSecret: %v", rs)
		var cur string
		for i := 0; i < 100; i++ {
			g := chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}))(c, "GetSecretValue")
			if cur = aws.StringValue(g.SecretString); strings.HasPrefix(cur, "rotated:") && aws.StringValue(g.VersionId) == *rs.VersionId {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.want(strings.HasPrefix(cur, "rotated:"), "after RotateSecret AWSCURRENT = %q", cur)
		h.mu.Lock()
		steps := strings.Join(h.steps, ",")
		h.mu.Unlock()
		c.want(steps == "createSecret,setSecret,testSecret,finishSecret", "webhook steps %s", steps)
		d = chk(sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}))(c, "DescribeSecret")
		c.want(aws.BoolValue(d.RotationEnabled) && aws.StringValue(d.RotationLambdaARN) == rotationLambda && d.RotationRules != nil &&
			aws.Int64Value(d.RotationRules.AutomaticallyAfterDays) == 30 && d.LastRotatedDate != nil && d.NextRotationDate != nil, "DescribeSecret after rotation: %v", d)
		cr := chk(sm.CancelRotateSecret(&secretsmanager.CancelRotateSecretInput{SecretId: aws.String(arn)}))(c, "CancelRotateSecret")
		c.want(aws.StringValue(cr.ARN) == arn, "CancelRotateSecret: %v", cr)
		d = chk(sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}))(c, "DescribeSecret")
		c.want(!aws.BoolValue(d.RotationEnabled), "rotation still enabled after CancelRotateSecret")
		c.pass("RotateSecret through the webhook (%s; the hook calls back with v1: PutSecretValue AWSPENDING + RotationToken, UpdateSecretVersionStage), AWSCURRENT rotated, DescribeSecret RotationEnabled/Rules/LastRotatedDate/NextRotationDate; CancelRotateSecret", steps)
	}

	// ---- replication --------------------------------------------------------
	euSM := secretsmanager.New(c.session("eu-west-1"))
	rr := chk(sm.ReplicateSecretToRegions(&secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("gov1/list/0"),
		AddReplicaRegions: []*secretsmanager.ReplicaRegionType{{Region: aws.String("eu-west-1")}, {Region: aws.String("eu-central-1")}}}))(c, "ReplicateSecretToRegions")
	c.want(len(rr.ReplicationStatus) == 2 && aws.StringValue(rr.ARN) != "", "ReplicateSecretToRegions: %v", rr)
	repARN := strings.Replace(aws.StringValue(rr.ARN), ":us-east-1:", ":eu-west-1:", 1)
	var rg *secretsmanager.GetSecretValueOutput
	for i := 0; i < 50; i++ {
		rg, err = euSM.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String(repARN)})
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.ok("GetSecretValue of the replica in eu-west-1", err)
	c.want(aws.StringValue(rg.SecretString) == "value-0", "replica value %q", aws.StringValue(rg.SecretString))
	rm := chk(sm.RemoveRegionsFromReplication(&secretsmanager.RemoveRegionsFromReplicationInput{SecretId: rr.ARN, RemoveReplicaRegions: aws.StringSlice([]string{"eu-central-1"})}))(c, "RemoveRegionsFromReplication")
	c.want(len(rm.ReplicationStatus) == 1 && aws.StringValue(rm.ReplicationStatus[0].Region) == "eu-west-1", "RemoveRegionsFromReplication: %v", rm)
	st := chk(euSM.StopReplicationToReplica(&secretsmanager.StopReplicationToReplicaInput{SecretId: aws.String(repARN)}))(c, "StopReplicationToReplica")
	c.want(aws.StringValue(st.ARN) == repARN, "StopReplicationToReplica: %v", st)
	c.pass("ReplicateSecretToRegions (eu-west-1, eu-central-1), the replica readable in eu-west-1, RemoveRegionsFromReplication (eu-central-1), StopReplicationToReplica from eu-west-1 (%s)", repARN)

	// ---- errors and deletion ---------------------------------------------------
	_, err = sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String("gov1/db"), SecretString: aws.String("x")})
	c.wantErr("CreateSecret of an existing name", err, "ResourceExistsException", "The operation failed because the secret gov1/db already exists.", 400)
	_, err = sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String("gov1/none")})
	c.wantErr("GetSecretValue of an unknown secret", err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)
	_, err = sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String("gov1/db"), VersionStage: aws.String("NOPE")})
	c.wantErr("GetSecretValue of an unknown stage", err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: NOPE", 400)
	_, err = sm.CreateSecret(&secretsmanager.CreateSecretInput{Name: aws.String("gov1/big"), SecretBinary: make([]byte, 65537)})
	c.wantErr("CreateSecret of 65537 bytes", err, "ValidationException", "-", 400)
	_, err = sm.DeleteSecret(&secretsmanager.DeleteSecretInput{SecretId: aws.String("gov1/db"), RecoveryWindowInDays: aws.Int64(3)})
	c.wantErr("DeleteSecret RecoveryWindowInDays 3", err, "InvalidParameterException", "-", 400)
	del := chk(sm.DeleteSecret(&secretsmanager.DeleteSecretInput{SecretId: aws.String("gov1/db"), RecoveryWindowInDays: aws.Int64(7)}))(c, "DeleteSecret")
	days := time.Until(aws.TimeValue(del.DeletionDate)).Hours() / 24
	c.want(aws.StringValue(del.ARN) == arn && days > 6.9 && days < 7.1, "DeleteSecret: %v (%.2f days)", del, days)
	_, err = sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String("gov1/db")})
	c.wantErr("GetSecretValue of a secret scheduled for deletion", err, "InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.", 400)
	d = chk(sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String("gov1/db")}))(c, "DescribeSecret of a deleted secret")
	c.want(d.DeletedDate != nil, "DescribeSecret: no DeletedDate")
	rs := chk(sm.RestoreSecret(&secretsmanager.RestoreSecretInput{SecretId: aws.String("gov1/db")}))(c, "RestoreSecret")
	c.want(aws.StringValue(rs.ARN) == arn, "RestoreSecret: %v", rs)
	chk(sm.GetSecretValue(&secretsmanager.GetSecretValueInput{SecretId: aws.String("gov1/db")}))(c, "GetSecretValue after RestoreSecret")
	fd := chk(sm.DeleteSecret(&secretsmanager.DeleteSecretInput{SecretId: aws.String("gov1/bin"), ForceDeleteWithoutRecovery: aws.Bool(true)}))(c, "DeleteSecret force")
	c.want(fd.DeletionDate != nil, "DeleteSecret force: %v", fd)
	_, err = sm.DescribeSecret(&secretsmanager.DescribeSecretInput{SecretId: aws.String("gov1/bin")})
	c.wantErr("DescribeSecret of a force-deleted secret", err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)
	c.pass("DeleteSecret 7 days (DeletionDate in %.2f days; DescribeSecret has DeletedDate), RestoreSecret, DeleteSecret ForceDeleteWithoutRecovery", days)
}
