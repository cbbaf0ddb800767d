package secretsmanager

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestNameCharsMatchesRegexp checks the regexp-free name and ARN-suffix
// tests against the regexps they replace.
func TestNameCharsMatchesRegexp(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-zA-Z0-9/_+=.@-]+$`)
	arnSuffixRE := regexp.MustCompile(`-[a-zA-Z0-9]{6}$`)
	inputs := []string{"", "a", "app/db-password", "a b", "x\n", "é", "-AbCdEf", "x-AbCdE", "x-AbCdEf", "x-AbC_Ef", "x--bCdEf", "n-123456", "ü-abcdef", "a-abcdeé"}
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "aZ09/_+=.@- -é\x00\xff!#"
	for range 20000 {
		b := make([]byte, rng.IntN(10))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := nameChars(s), nameRE.MatchString(s); got != want {
			t.Errorf("nameChars(%q) = %t, want %t", s, got, want)
		}
		if got, want := hasARNSuffix(s), arnSuffixRE.MatchString(s); got != want {
			t.Errorf("hasARNSuffix(%q) = %t, want %t", s, got, want)
		}
	}
}
