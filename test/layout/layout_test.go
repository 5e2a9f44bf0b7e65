package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLayout checks the module as it is: the import rules and the sizes of files and
// functions, less the exceptions in testdata/exceptions.txt, each of which must still apply.
func TestLayout(t *testing.T) {
	root := moduleRoot(t)
	module, pkgs := listPackages(t, root)
	vs := importViolations(module, pkgs)
	vs = append(vs, sourceViolations(t, root)...)
	b, err := os.ReadFile(filepath.Join("testdata", "exceptions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	failures, stale := applyExceptions(vs, parseExceptions(string(b)))
	for _, f := range failures {
		t.Error(f)
	}
	for _, s := range stale {
		t.Errorf("testdata/exceptions.txt: %q no longer applies; remove it", s)
	}
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("go env GOMOD: %q, %v", out, err)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// listPackages runs `go list -json ./...` in the module root: the module's path and packages.
func listPackages(t *testing.T, root string) (string, []pkg) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	var module string
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p struct {
			pkg
			Module struct{ Path string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		module = p.Module.Path
		pkgs = append(pkgs, p.pkg)
	}
	if module == "" {
		t.Fatal("go list: no package of the module")
	}
	return module, pkgs
}

// sourceViolations parses every non-test, non-generated .go file under root (testdata,
// vendor and directories starting with . or _ are skipped, as the go command does).
func sourceViolations(t *testing.T, root string) []violation {
	var out []violation
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, sizeViolations(fset, filepath.ToSlash(r), f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
