package secretsmanager

import (
	"slices"
	"testing"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// TestAppendWords splits attributes and filter values into words as AWS
// does for the description and all filters (the AWS-verified cases of
// moto's test_word_splitter and test_with_all_filter_special_characters).
func TestAppendWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"test", []string{"test"}},
		{"my test", []string{"my", "test"}},
		{"  my \t test ", []string{"my", "test"}},
		{"Mytest", []string{"Mytest"}},
		{"MyTest", []string{"My", "Test"}},
		{"MyTestPhrase", []string{"My", "Test", "Phrase"}},
		{"myTest", []string{"my", "Test"}},
		{"my/test", []string{"my", "test"}},
		{"prod/AppBeta/k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod_AppBeta_k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod+AppBeta+k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod=AppBeta=k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod.AppBeta.k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod@AppBeta@k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod-AppBeta-k3y9", []string{"prod", "App", "Beta", "k3y9"}},
		{"prod-AppBeta/k3y9", []string{"prod-AppBeta/k3y9"}}, // two kinds of separator: no split
		{"/testing2/two-51234", []string{"/testing2/two-51234"}},
		{"uat/COMPANY/x", []string{"uat", "COMPANY", "x"}},
		{"uat/COMPANYthings/x", []string{"uat", "COMPAN", "Ythings", "x"}},
		{"SecretFTag12", []string{"Secret", "F", "Tag12"}},
		{"DescTwo", []string{"Desc", "Two"}},
		{"+", nil},
		{"//a//", []string{"a"}},
		{"a/b c-d", []string{"a", "b", "c", "d"}}, // the separator rule holds per space-separated piece
		{"ÉtéÀParis", []string{"Été", "À", "Paris"}},
		{"", nil},
	}
	for _, tc := range tests {
		if got := appendWords(nil, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("appendWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFilterMatch checks a filter against one secret: which keys match by
// prefix and which by words, case, negation and several values.
func TestFilterMatch(t *testing.T) {
	m := &secretMeta{
		Name:          "prod/AppBeta",
		Description:   str("The Payments key"),
		Tags:          []tag{{Key: "Team", Value: "blue-green"}},
		PrimaryRegion: "eu-west-1",
	}
	tests := []struct {
		key    smapi.FilterNameStringType
		values []string
		want   bool
	}{
		{"name", []string{"prod/A"}, true},
		{"name", []string{"Prod"}, false},
		{"name", []string{"App"}, false},
		{"name", []string{"!prod"}, false},
		{"name", []string{"!dev", "prod"}, true},
		{"name", []string{"dev", "!prod"}, false},
		{"tag-key", []string{"Te"}, true},
		{"tag-key", []string{"te"}, false},
		{"tag-value", []string{"blue-g"}, true},
		{"tag-value", []string{"green"}, false},
		{"primary-region", []string{"eu-"}, true},
		{"primary-region", []string{"EU"}, false},
		{"description", []string{"paym"}, true},
		{"description", []string{"KEY the"}, true},
		{"description", []string{"ments"}, false},
		{"description", []string{"!paym"}, false},
		{"all", []string{"beta"}, true},
		{"all", []string{"app beta"}, true},
		{"all", []string{"appbeta"}, false},
		{"all", []string{"team"}, true},
		{"all", []string{"green"}, true},
		{"all", []string{"prod green"}, false}, // the words of a value must all be in one attribute
		{"all", []string{"/"}, false},
		{"all", []string{"!/"}, true},
		{"owning-service", []string{"rds"}, false},
		{"owning-service", []string{"!rds"}, true},
	}
	for _, tc := range tests {
		f := compileFilters([]smapi.Filter{{Key: tc.key, Values: tc.values}})
		if got := matchAll(m, f); got != tc.want {
			t.Errorf("filter %s=%q on %s = %t, want %t", tc.key, tc.values, m.Name, got, tc.want)
		}
	}
}
