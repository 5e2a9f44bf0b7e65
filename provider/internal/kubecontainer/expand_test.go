package kubecontainer

import "testing"

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"A": "alpha", "B": "$(A)", "EMPTY": ""}
	mapping := MappingFor(vars)
	for in, want := range map[string]string{
		"":                     "",
		"plain":                "plain",
		"$(A)":                 "alpha",
		"x-$(A)-y":             "x-alpha-y",
		"$(A)$(A)":             "alphaalpha",
		"$(B)":                 "$(A)", // a value is not expanded again
		"$(EMPTY)!":            "!",
		"$(UNDEFINED)":         "$(UNDEFINED)",
		"$$(A)":                "$(A)", // escaped
		"$$$(A)":               "$alpha",
		"$$":                   "$",
		"$":                    "$",
		"a$":                   "a$",
		"$(A":                  "$(A", // unterminated
		"$(":                   "$(",
		"$x$(A)":               "$xalpha",
		"$()":                  "$()",
		"$(A)$(UNDEFINED)$(A)": "alpha$(UNDEFINED)alpha",
	} {
		if got := Expand(in, mapping); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
