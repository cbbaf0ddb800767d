package partition

import "testing"

func TestFor(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-west-3": "aws", "": "aws",
		"cn-north-1": "aws-cn", "cn-northwest-1": "aws-cn",
		"us-gov-west-1": "aws-us-gov", "us-gov-east-1": "aws-us-gov",
	} {
		if got := For(region); got != want {
			t.Errorf("For(%q) = %q, want %q", region, got, want)
		}
	}
	if got := ARN("cn-north-1", "kms:cn-north-1:111122223333:key/x"); got != "arn:aws-cn:kms:cn-north-1:111122223333:key/x" {
		t.Errorf("ARN = %q", got)
	}
}
