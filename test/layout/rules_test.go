package layout

import (
	"fmt"
	"go/ast"
	"go/token"
	"strings"
)

// Limits of the style guide (/work/shared/STYLE.md is the project's STYLE.md: "Files under
// ~400 lines, functions under ~60").
const (
	maxFileLines = 400
	maxFuncLines = 60
)

// violation is one broken rule. key is what an exception names: a package import path
// relative to the module ("remote -> provider"), a file ("provider/sync.go") or a function
// in it ("provider/sync.go:Provider.act").
type violation struct {
	key, msg string
}

// pkg is what `go list -json` says of a package of the module.
type pkg struct {
	ImportPath string
	Imports    []string // non-test imports
	Deps       []string // everything it depends on, transitively (non-test)
}

// importViolations checks the import rules of the module's packages:
//   - a package under provider/ imports neither the root provider package nor an ancestor
//     of itself;
//   - remote/... and cloud/... depend (even indirectly) on nothing of provider, cmd or internal;
//   - nothing imports cmd/... (internal/... included).
func importViolations(module string, pkgs []pkg) []violation {
	var out []violation
	for _, p := range pkgs {
		from := rel(module, p.ImportPath)
		if from == "" {
			continue // not of the module
		}
		for _, imp := range p.Imports {
			if to := rel(module, imp); to != "" {
				if msg := importRule(from, to); msg != "" {
					out = append(out, violation{from + " -> " + to, from + " imports " + to + ": " + msg})
				}
			}
		}
		if under(from, "remote") || under(from, "cloud") {
			for _, dep := range p.Deps {
				to := rel(module, dep)
				if under(to, "provider") || under(to, "cmd") || under(to, "internal") {
					out = append(out, violation{from + " -> " + to, from + " depends on " + to + ": remote and cloud know nothing of provider, cmd or internal"})
				}
			}
		}
	}
	return out
}

// importRule says which rule a direct import from -> to breaks ("": none).
func importRule(from, to string) string {
	switch {
	case under(to, "cmd"):
		return "nothing imports a command"
	case strings.HasPrefix(from, "provider/") && under(from, to):
		return "a package under provider/ imports neither the root provider nor an ancestor of itself"
	}
	return ""
}

// rel is the import path relative to the module ("." for its root), or "" when it is not in it.
func rel(module, importPath string) string {
	if importPath == module {
		return "."
	}
	if r, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return r
	}
	return ""
}

// under reports whether p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// sizeViolations checks one parsed non-test file, named by its slash path from the module root.
func sizeViolations(fset *token.FileSet, name string, f *ast.File) []violation {
	var out []violation
	if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
		out = append(out, violation{name, fmt.Sprintf("%s: %d lines, over %d", name, n, maxFileLines)})
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || isTableData(fn) {
			continue
		}
		n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
		if n > maxFuncLines {
			key := name + ":" + funcName(fn)
			out = append(out, violation{key, fmt.Sprintf("%s: %d lines, over %d", key, n, maxFuncLines)})
		}
	}
	return out
}

// isTableData reports whether fn's body is a single return of a composite literal: a table
// written as a function (defaults, a list of cases), which is as long as its data and not
// logic. Any other statement makes it logic, and every line counts.
func isTableData(fn *ast.FuncDecl) bool {
	if len(fn.Body.List) != 1 {
		return false
	}
	ret, ok := fn.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return false
	}
	e := ret.Results[0]
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = u.X
	}
	_, ok = e.(*ast.CompositeLit)
	return ok
}

// funcName is "name" for a function and "Type.name" for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}

// applyExceptions are the violations no exception names, and the exceptions that name no
// violation (stale: remove them from the list).
func applyExceptions(vs []violation, exceptions []string) (failures, stale []string) {
	listed := map[string]bool{}
	for _, e := range exceptions {
		listed[e] = true
	}
	used := map[string]bool{}
	for _, v := range vs {
		if listed[v.key] {
			used[v.key] = true
			continue
		}
		failures = append(failures, v.msg)
	}
	for _, e := range exceptions {
		if !used[e] {
			stale = append(stale, e)
		}
	}
	return failures, stale
}

// parseExceptions reads the exceptions file: one key a line; blank lines and # comments are
// skipped.
func parseExceptions(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
