package e2e

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// onEachStore runs f on the embedded store (where ListSecrets pages from the
// in-memory list index) and, when KEYFORT_TEST_POSTGRES is set, on
// PostgreSQL (where it reads every secret through): both must answer alike.
func onEachStore(t *testing.T, f func(t *testing.T, opts ...keyfortest.Option)) {
	t.Run("sqlite", func(t *testing.T) { f(t) })
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("KEYFORT_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("KEYFORT_TEST_POSTGRES is not set")
		}
		f(t, keyfortest.WithStore(dsn))
	})
}

// listNames returns the names of every secret a listing gives, page after
// page.
func listNames(t *testing.T, c *secretsmanager.Client, in *secretsmanager.ListSecretsInput) []string {
	t.Helper()
	var names []string
	p := secretsmanager.NewListSecretsPaginator(c, in)
	for i := 0; p.HasMorePages(); i++ {
		if i > 100 {
			t.Fatal("ListSecrets did not end within 100 pages")
		}
		page, err := p.NextPage(ctxT(t))
		mustNoErr(t, err, "ListSecrets")
		for _, s := range page.SecretList {
			names = append(names, aws.ToString(s.Name))
		}
	}
	return names
}

// TestSMListSecretsOrder checks the order of ListSecrets and of
// BatchGetSecretValue with Filters: without SortOrder AWS lists by
// CreatedDate, oldest first (moto's AWS-verified test_with_all_filter and
// test_with_all_filter_special_characters compare whole lists in creation
// order); SortOrder desc reverses it, and SortBy name sorts A to Z unless
// desc.
func TestSMListSecretsOrder(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts ...keyfortest.Option) {
		clock := keyfortest.NewClock(time.Now().UTC().Truncate(time.Second))
		_, c := startSM(t, append(opts, keyfortest.WithClock(clock))...)
		// Created in an order that is not the names' order.
		created := []string{"order/c-first", "order/a-second", "order/d-third", "order/b-fourth"}
		for _, n := range created {
			createSecret(t, c, n, "value of "+n)
			clock.Advance(time.Second)
		}
		byName := slices.Sorted(slices.Values(created))
		reversed := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }

		for _, tc := range []struct {
			name string
			in   secretsmanager.ListSecretsInput
			want []string
		}{
			{"default", secretsmanager.ListSecretsInput{}, created},
			{"default, pages of 1", secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)}, created},
			{"asc", secretsmanager.ListSecretsInput{SortOrder: types.SortOrderTypeAsc}, created},
			{"desc", secretsmanager.ListSecretsInput{SortOrder: types.SortOrderTypeDesc, MaxResults: aws.Int32(3)}, reversed(created)},
			{"by created date", secretsmanager.ListSecretsInput{SortBy: types.SortByTypeCreatedDate}, created},
			{"by name", secretsmanager.ListSecretsInput{SortBy: types.SortByTypeName, MaxResults: aws.Int32(2)}, byName},
			{"by name desc", secretsmanager.ListSecretsInput{SortBy: types.SortByTypeName, SortOrder: types.SortOrderTypeDesc}, reversed(byName)},
			{"filtered", secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"order/"}}}}, created},
		} {
			if got := listNames(t, c, &tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("ListSecrets(%s) = %v, want %v", tc.name, got, tc.want)
			}
		}

		// BatchGetSecretValue with Filters answers in ListSecrets' order.
		var got []string
		var token *string
		for page := 0; page == 0 || token != nil; page++ {
			if page > 10 {
				t.Fatal("BatchGetSecretValue paging did not end")
			}
			out, err := c.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{
				Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"order/"}}},
				MaxResults: aws.Int32(3),
				NextToken:  token,
			})
			mustNoErr(t, err, "BatchGetSecretValue(filters)")
			for _, v := range out.SecretValues {
				got = append(got, aws.ToString(v.Name))
			}
			token = out.NextToken
		}
		if !slices.Equal(got, created) {
			t.Errorf("BatchGetSecretValue(filters) = %v, want %v (oldest first)", got, created)
		}
	})
}
