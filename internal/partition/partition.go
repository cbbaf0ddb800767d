// Package partition names the AWS partition of a region, the second field
// of every ARN: "aws-cn" for the China regions (cn-north-1,
// cn-northwest-1), "aws-us-gov" for AWS GovCloud (US), "aws" elsewhere.
package partition

import "strings"

// The partitions Keyfort names.
const (
	AWS      = "aws"
	China    = "aws-cn"
	GovCloud = "aws-us-gov"
)

// For returns the partition of region; "aws" for an empty or unknown one.
func For(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return China
	case strings.HasPrefix(region, "us-gov-"):
		return GovCloud
	}
	return AWS
}

// IsChina reports whether region is one of the China regions.
func IsChina(region string) bool { return For(region) == China }

// ARN returns "arn:<partition of region>:" + rest.
func ARN(region, rest string) string { return "arn:" + For(region) + ":" + rest }
