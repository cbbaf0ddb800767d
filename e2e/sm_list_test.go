package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// onEachStore runs f on the embedded store (where ListSecrets pages from the
// in-memory list index) and, when KEYFORT_TEST_POSTGRES is set, on
// PostgreSQL (where it reads every secret through): both must answer alike.
func onEachStore(t *testing.T, f func(t *testing.T, opts ...keyfortest.Option)) {
	t.Run("sqlite", func(t *testing.T) { f(t) })
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
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

// secretSpec is a secret a filter test creates.
type secretSpec struct {
	name, description string
	tags              map[string]string
}

// TestSMListSecretsFilters checks how each ListSecrets filter matches, with
// the cases AWS answered in moto's AWS-verified tests (tests/
// test_secretsmanager/test_list_secrets.py: test_with_all_filter,
// test_with_all_filter_special_characters, test_with_filter_with_value_
// with_multiple_words, test_with_duplicate_filter_keys), in LocalStack's
// AWS-validated test_list_secrets_filtering, and in the Secrets Manager
// user guide ("Find secrets": tag keys and values match by case-sensitive
// prefix). Names and description are word-matched by "all" and
// "description": a value matches when each of its words is a prefix, in
// any case, of a word of one attribute; an attribute splits into words at
// one kind of / - _ + = . @ and then where the case of its letters changes.
// Results come oldest first.
func TestSMListSecretsFilters(t *testing.T) {
	type query struct {
		filters []types.Filter
		want    []string
	}
	all := func(v ...string) []types.Filter {
		return []types.Filter{{Key: types.FilterNameStringTypeAll, Values: v}}
	}
	desc := func(v ...string) []types.Filter {
		return []types.Filter{{Key: types.FilterNameStringTypeDescription, Values: v}}
	}
	name := func(v ...string) []types.Filter {
		return []types.Filter{{Key: types.FilterNameStringTypeName, Values: v}}
	}
	special := []string{"prod/AppBeta/k3y9", "prod_AppBeta_k3y9", "prod+AppBeta+k3y9", "prod=AppBeta=k3y9",
		"prod.AppBeta.k3y9", "prod@AppBeta@k3y9", "prod-AppBeta-k3y9"}
	cases := []struct {
		name    string
		secrets []secretSpec
		queries []query
	}{{
		name: "all: special characters and case changes",
		secrets: []secretSpec{{name: special[0]}, {name: special[1]}, {name: special[2]}, {name: special[3]},
			{name: special[4]}, {name: special[5]}, {name: special[6]},
			// Two kinds of separator: the name is one word.
			{name: "prod-AppBeta/k3y9"}, {name: "uat/COMPANY/k3y9"}, {name: "uat/COMPANYthings/k3y9"}},
		queries: []query{
			{all("AppBeta"), special},
			{all("Beta"), special},
			{all("appbeta"), nil}, // one word, not a prefix of App
			{all("AppBeta", "prod"), append(slices.Clone(special), "prod-AppBeta/k3y9")},
			{all("+"), nil},
			{all("k3y9"), append(slices.Clone(special), "uat/COMPANY/k3y9", "uat/COMPANYthings/k3y9")},
			{all("company"), []string{"uat/COMPANY/k3y9"}},
			{all("things"), nil},
			{all("Ythings"), []string{"uat/COMPANYthings/k3y9"}},
			{all("N"), nil},
			{all("pany"), nil},
			{all("!k3y9"), []string{"prod-AppBeta/k3y9"}},
		},
	}, {
		name: "all: name, description, tag keys and values",
		secrets: []secretSpec{
			{name: "SecretOnek3y9"},
			{name: "SecretTwok3y9", description: "DescTwo"},
			{name: "Thirdsecretk3y9"},
			{name: "SecretFTagk3y9", tags: map[string]string{"1": "foo"}},
			{name: "SecretFValuek3y9", tags: map[string]string{"foo": "v"}},
			{name: "nonek3y9"},
		},
		queries: []query{
			{all("SecretOne"), []string{"SecretOnek3y9"}},
			{all("foo"), []string{"SecretFTagk3y9", "SecretFValuek3y9"}},
			{all("Secret"), []string{"SecretOnek3y9", "SecretTwok3y9", "SecretFTagk3y9", "SecretFValuek3y9"}},
			{all("secret"), []string{"SecretOnek3y9", "SecretTwok3y9", "SecretFTagk3y9", "SecretFValuek3y9"}},
			{all("ret"), nil},
			{all("sec"), []string{"SecretOnek3y9", "SecretTwok3y9", "SecretFTagk3y9", "SecretFValuek3y9"}},
			{all("SomeSecret"), nil},
			{all("d"), []string{"SecretTwok3y9"}},
			{all("d t"), []string{"SecretTwok3y9"}},
			{all("t"), []string{"SecretTwok3y9", "Thirdsecretk3y9", "SecretFTagk3y9"}},
		},
	}, {
		name: "name prefix, description words",
		secrets: []secretSpec{
			{name: "testing1/one-51234", description: "a secret"},
			{name: "/testing2/two-51234", description: "an secret"},
			{name: "testing3/three-51234", description: "asecret"},
			{name: "/testing4/four-51234", description: "thesecret"},
		},
		queries: []query{
			{name("/"), []string{"/testing2/two-51234", "/testing4/four-51234"}},
			{name("!/"), []string{"testing1/one-51234", "testing3/three-51234"}},
			{name("testing1 one"), nil},
			{name("Testing"), nil},
			{desc("a"), []string{"testing1/one-51234", "/testing2/two-51234", "testing3/three-51234"}},
			{desc("!a"), []string{"/testing4/four-51234"}},
			{desc("a secret"), []string{"testing1/one-51234", "/testing2/two-51234"}},
			{desc("A SECRET"), []string{"testing1/one-51234", "/testing2/two-51234"}},
			{append(desc("a"), name("secret")...), nil},
			{append(desc("a"), name("an")...), nil},
			{desc("!c"), []string{"testing1/one-51234", "/testing2/two-51234", "testing3/three-51234", "/testing4/four-51234"}},
		},
	}, {
		name: "description words, filters ANDed",
		secrets: []secretSpec{
			{name: "foo", description: "one two"},
			{name: "bar", description: "one and two"},
			{name: "baz", description: "one"},
			{name: "qux", description: "two"},
			{name: "none", description: "unrelated"},
		},
		queries: []query{
			{desc("one two"), []string{"foo", "bar"}},
			{desc("o t"), []string{"foo", "bar"}},
			{desc("t"), []string{"foo", "bar", "qux"}},
			{append(desc("one"), desc("two")...), []string{"foo", "bar"}},
			{desc("one", "two"), []string{"foo", "bar", "baz", "qux"}},
		},
	}, {
		name: "tag keys and values by case-sensitive prefix",
		secrets: []secretSpec{
			{name: "k-production", tags: map[string]string{"Production": "x"}},
			{name: "k-prod1", tags: map[string]string{"Prod1": "x"}},
			{name: "k-lower", tags: map[string]string{"prod": "x"}},
			{name: "k-space", tags: map[string]string{"1 Prod": "x"}},
			{name: "v-production", tags: map[string]string{"x": "Production"}},
			{name: "v-prod1", tags: map[string]string{"x": "Prod1"}},
			{name: "v-lower", tags: map[string]string{"x": "prod"}},
			{name: "v-space", tags: map[string]string{"x": "1 Prod"}},
		},
		queries: []query{
			{[]types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"Prod"}}}, []string{"k-production", "k-prod1"}},
			{[]types.Filter{{Key: types.FilterNameStringTypeTagValue, Values: []string{"Prod"}}}, []string{"v-production", "v-prod1"}},
			{[]types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"Prod", "prod"}}}, []string{"k-production", "k-prod1", "k-lower"}},
		},
	}}
	onEachStore(t, func(t *testing.T, opts ...keyfortest.Option) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				clock := keyfortest.NewClock(time.Now().UTC().Truncate(time.Second))
				_, c := startSM(t, append(slices.Clone(opts), keyfortest.WithClock(clock))...)
				for _, s := range tc.secrets {
					in := &secretsmanager.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String("v")}
					if s.description != "" {
						in.Description = aws.String(s.description)
					}
					for k, v := range s.tags {
						in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
					}
					_, err := c.CreateSecret(ctxT(t), in)
					mustNoErr(t, err, "CreateSecret("+s.name+")")
					clock.Advance(time.Second)
				}
				for _, q := range tc.queries {
					got := listNames(t, c, &secretsmanager.ListSecretsInput{Filters: q.filters})
					if !slices.Equal(got, q.want) {
						t.Errorf("ListSecrets(%s) = %q, want %q", filterString(q.filters), got, q.want)
					}
				}
			})
		}
	})
}

func filterString(fs []types.Filter) string {
	var b []byte
	for i, f := range fs {
		if i > 0 {
			b = append(b, " AND "...)
		}
		b = fmt.Appendf(b, "%s=%q", f.Key, f.Values)
	}
	return string(b)
}
