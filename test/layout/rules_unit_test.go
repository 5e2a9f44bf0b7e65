package layout

import (
	"fmt"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
)

const mod = "example.com/m"

// TestImportViolations: each rule fails on a small import graph that breaks it, and passes
// the imports the layout allows.
func TestImportViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pkg     pkg
		wantKey string // "": no violation
	}{
		{"sub imports root", pkg{ImportPath: mod + "/provider/prober", Imports: []string{mod + "/provider"}}, "provider/prober -> provider"},
		{"sub imports ancestor", pkg{ImportPath: mod + "/provider/a/b", Imports: []string{mod + "/provider/a"}}, "provider/a/b -> provider/a"},
		{"sub imports sibling", pkg{ImportPath: mod + "/provider/prober", Imports: []string{mod + "/provider/status", mod + "/remote"}}, ""},
		{"sub imports its child", pkg{ImportPath: mod + "/provider/a", Imports: []string{mod + "/provider/a/b"}}, ""},
		{"root imports sub", pkg{ImportPath: mod + "/provider", Imports: []string{mod + "/provider/prober"}}, ""},
		{"root named alike", pkg{ImportPath: mod + "/providerx/a", Imports: []string{mod + "/providerx"}}, ""},
		{"remote imports provider", pkg{ImportPath: mod + "/remote/doctor", Imports: []string{mod + "/provider/status"}, Deps: []string{mod + "/provider/status"}}, "remote/doctor -> provider/status"},
		{"remote depends on internal", pkg{ImportPath: mod + "/remote", Imports: []string{"fmt"}, Deps: []string{"fmt", mod + "/internal/vkadapter"}}, "remote -> internal/vkadapter"},
		{"cloud depends on cmd", pkg{ImportPath: mod + "/cloud/ec2", Deps: []string{mod + "/cmd/satellite"}}, "cloud/ec2 -> cmd/satellite"},
		{"remote depends on remote", pkg{ImportPath: mod + "/remote/doctor", Imports: []string{mod + "/remote"}, Deps: []string{mod + "/remote"}}, ""},
		{"internal imports cmd", pkg{ImportPath: mod + "/internal/kubeletserver", Imports: []string{mod + "/cmd/satellite"}}, "internal/kubeletserver -> cmd/satellite"},
		{"test imports cmd", pkg{ImportPath: mod + "/test/e2e", Imports: []string{mod + "/cmd/satellite"}}, "test/e2e -> cmd/satellite"},
		{"cmd imports everything else", pkg{ImportPath: mod + "/cmd/satellite", Imports: []string{mod + "/provider", mod + "/internal/x", mod + "/remote"}}, ""},
		{"outside the module", pkg{ImportPath: "other.org/remote", Deps: []string{mod + "/provider"}}, ""},
	}
	for _, tt := range tests {
		var keys []string
		for _, v := range importViolations(mod, []pkg{tt.pkg}) {
			keys = append(keys, v.key)
		}
		if tt.wantKey == "" && len(keys) > 0 || tt.wantKey != "" && (len(keys) == 0 || keys[0] != tt.wantKey) {
			t.Errorf("%s: violations %q, want %q", tt.name, keys, tt.wantKey)
		}
	}
}

// TestSizeViolations: a file over the limit, a function over it (as a function and as a
// method), table data and a function at the limit.
func TestSizeViolations(t *testing.T) {
	t.Parallel()
	body := func(n int) string { return strings.Repeat("\tx++\n", n-3) } // n lines with "func {", "var x int", "}"
	fn := func(name string, lines int) string { return "func " + name + " {\n\tvar x int\n" + body(lines) + "}\n" }
	table := "func defaults() []int {\n\treturn []int{\n" + strings.Repeat("\t\t1,\n", 70) + "\t}\n}\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"at the limit", fn("f()", maxFuncLines), nil},
		{"over the limit", fn("f()", maxFuncLines+1), []string{"a.go:f"}},
		{"method over the limit", "type T struct{}\n" + fn("(t *T) m()", maxFuncLines+1), []string{"a.go:T.m"}},
		{"generic method", "type G[K any] struct{}\n" + fn("(g G[K]) m()", maxFuncLines+1), []string{"a.go:G.m"}},
		{"table data", table, nil},
		{"table data behind a pointer", strings.Replace(table, "[]int{", "&[]int{", 1), nil},
		{"a table with logic is not table data", strings.Replace(table, "\treturn", "\tprintln()\n\treturn", 1), []string{"a.go:defaults"}},
		{"file over the limit", strings.Repeat("// c\n", maxFileLines-1) + "var v int\n", []string{"a.go"}},
		{"file at the limit", strings.Repeat("// c\n", maxFileLines-2) + "var v int\n", nil},
	}
	for _, tt := range tests {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "a.go", "package a\n"+tt.src, 0)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var keys []string
		for _, v := range sizeViolations(fset, "a.go", f) {
			keys = append(keys, v.key)
		}
		if !reflect.DeepEqual(keys, tt.want) {
			t.Errorf("%s: violations %q, want %q", tt.name, keys, tt.want)
		}
	}
}

// TestApplyExceptions: a listed violation passes, an unlisted one fails, and an exception
// that names no violation is stale.
func TestApplyExceptions(t *testing.T) {
	t.Parallel()
	vs := []violation{{"a.go", "a.go: long"}, {"b.go:f", "b.go:f: long"}, {"remote -> provider", "remote imports provider"}}
	list := parseExceptions("# comment\na.go\n\n  remote -> provider  # still there\nc.go:gone\n")
	failures, stale := applyExceptions(vs, list)
	got := fmt.Sprint(failures, stale)
	if want := fmt.Sprint([]string{"b.go:f: long"}, []string{"c.go:gone"}); got != want {
		t.Errorf("failures, stale = %s, want %s", got, want)
	}
}
