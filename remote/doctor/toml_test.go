package doctor

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// tomlText has every form parseTOML reads.
const tomlText = `# comment
version = 2
disabled_plugins = [
  "cri", # why
  'io.containerd.internal.v1.tracing',
]
root = "/var/lib/containerd" # trailing

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    cni.bin_dir = "/usr/lib/cni"
    spec = """
[not.a.table]
"""
    inline = { a = 1, b = "x" }
  [plugins.'io.containerd.grpc.v1.cri'.cni]
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1_0
    esc = "a\"b\\c\u0041"
`

func TestParseTOML(t *testing.T) {
	t.Parallel()
	d, err := parseTOML(tomlText)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := d.get("version"); k.value != int64(2) {
		t.Errorf("version = %#v", k.value)
	}
	if got := d.getStrings("disabled_plugins"); strings.Join(got, ",") != "cri,io.containerd.internal.v1.tracing" {
		t.Errorf("disabled_plugins = %q", got)
	}
	cri := []string{"plugins", "io.containerd.grpc.v1.cri"}
	tests := []struct {
		path []string
		want string
	}{
		{append(cri, "sandbox_image"), "registry.k8s.io/pause:3.6"},
		{append(cri, "cni", "bin_dir"), "/usr/lib/cni"},
		{append(cri, "cni", "conf_dir"), "/etc/cni/net.d"},
		{append(cri, "cni", "esc"), `a"b\cA`},
		{[]string{"root"}, "/var/lib/containerd"},
	}
	for _, tt := range tests {
		if got := d.getString(tt.path...); got != tt.want {
			t.Errorf("%v = %q, want %q", tt.path, got, tt.want)
		}
	}
	if k, _ := d.get(append(cri, "cni", "max_conf_num")...); k.value != int64(10) {
		t.Errorf("max_conf_num = %#v", k.value)
	}
	if _, ok := d.get("not", "a", "table"); ok || len(d.tables) != 3 {
		t.Errorf("a multi-line string was read as a table: %d tables", len(d.tables))
	}
	if k, _ := d.get("disabled_plugins"); d.line(k.lineStart) != 3 {
		t.Errorf("disabled_plugins on line %d", d.line(k.lineStart))
	}
}

var tomlBad = []string{
	"a = ",
	"a = \"unterminated\n",
	"[table\n",
	"a = [1, 2\n",
	"a = 1 b = 2\n",
	"= 1\n",
	"a = \"\\q\"\n",
	"a = 1\na = 2\n",
	"[t]\nk = 1\n[t]\nk = 2\n",
}

func TestParseTOMLErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range tomlBad {
		if _, err := parseTOML(bad); err == nil {
			t.Errorf("parseTOML(%q) succeeded", bad)
		}
	}
	if _, err := parseTOML("[[a]]\nk = 1\n[a.b]\nk = 1\n[[a]]\nk = 2\n[a.b]\nk = 2\n"); err != nil {
		t.Errorf("keys of an array of tables: %v", err)
	}
}

// tomlSetCases are edits and their outcome; the fuzz target starts from their documents.
var tomlSetCases = []struct {
	name, in string
	path     []string
	value    string
	want     string
	err      string
}{
	{name: "replace in place keeps the comment",
		in: "a = 1 # one\nb = 2\n", path: []string{"a"}, value: "3",
		want: "a = 3 # one\nb = 2\n"},
	{name: "replace a multi-line array",
		in: "x = [\n  \"a\",\n  \"b\",\n]\n[t]\n", path: []string{"x"}, value: `["b"]`,
		want: "x = [\"b\"]\n[t]\n"},
	{name: "add after the table's last key with its indent",
		in: "[p]\n  [p.q]\n    k = 1\n\n[r]\n", path: []string{"p", "q", "new"}, value: "true",
		want: "[p]\n  [p.q]\n    k = 1\n    new = true\n\n[r]\n"},
	{name: "add under an empty table",
		in: "  [p]\n[r]\n", path: []string{"p", "k"}, value: `"v"`,
		want: "  [p]\n    k = \"v\"\n[r]\n"},
	{name: "add a table at the end",
		in: "version = 2\n[p]\n  a = 1", path: []string{"p", "io.x", "k"}, value: "true",
		want: "version = 2\n[p]\n  a = 1\n\n[p.\"io.x\"]\n  k = true\n"},
	{name: "add a root key before the first table",
		in: "# head\n[p]\n", path: []string{"version"}, value: "3",
		want: "# head\nversion = 3\n[p]\n"},
	{name: "add a root key to an empty file",
		in: "", path: []string{"version"}, value: "3",
		want: "version = 3\n"},
	{name: "inline table refused",
		in: "[p]\ncni = { bin_dir = \"/x\" }\n", path: []string{"p", "cni", "conf_dir"}, value: `"/y"`,
		err: "inline table or dotted key"},
	{name: "dotted keys refused",
		in: "[p]\ncni.bin_dir = \"/x\"\n", path: []string{"p", "cni", "conf_dir"}, value: `"/y"`,
		err: "inline table or dotted key"},
}

func TestTOMLSet(t *testing.T) {
	t.Parallel()
	for _, tt := range tomlSetCases {
		d, err := parseTOML(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := d.set(tt.path, tt.value)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v\nwant %q", tt.name, got, err, tt.want)
			continue
		}
		if _, err := parseTOML(got); err != nil {
			t.Errorf("%s: result does not parse: %v", tt.name, err)
		}
	}
}

func TestRenderString(t *testing.T) {
	t.Parallel()
	in := "a\"b\\c\n\x01é"
	d, err := parseTOML("k = " + renderString(in) + "\n")
	if err != nil || d.getString("k") != in {
		t.Errorf("round trip of %q: %q, %v", in, d.getString("k"), err)
	}
	if renderKey("io.containerd.grpc.v1.cri") != `"io.containerd.grpc.v1.cri"` || renderKey("bin_dir") != "bin_dir" {
		t.Error("renderKey quotes the wrong keys")
	}
}

// tomlSeeds are the documents the TOML fuzz targets start from: containerd's own default
// configs (`containerd config default` of Debian 12's 1.6.20 and of 2.2.1), the configs
// the unit tests use, and the unit tests' documents.
func tomlSeeds(t testing.TB) []string {
	seeds := []string{tomlText, dockerConfig, v3Config, debianConfig}
	for _, f := range []string{"containerd-1.6.20-config-default.toml", "containerd-2.2.1-config-default.toml"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, string(b))
	}
	seeds = append(seeds, tomlBad...)
	for _, tt := range tomlSetCases {
		seeds = append(seeds, tt.in)
	}
	return seeds
}

// FuzzParseTOML: a document that parses has every key's offsets in order within the text,
// each value's text reads alone as the same value, and no key given twice (containerd
// refuses such a file); setting any key to any string, in place or as a new key, gives a
// document that parses, holds that string there and keeps every other value.
func FuzzParseTOML(f *testing.F) {
	for _, s := range tomlSeeds(f) {
		f.Add(s, "/usr/lib/cni")
	}
	f.Fuzz(func(t *testing.T, text, value string) {
		d, err := parseTOML(text)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range d.keys {
			if !(0 <= k.lineStart && k.lineStart <= k.valStart && k.valStart < k.valEnd && k.valEnd <= k.lineEnd && k.lineEnd <= len(text)) ||
				k.lineStart > 0 && text[k.lineStart-1] != '\n' || len(k.path) == 0 {
				t.Fatalf("key %q: offsets %d %d %d %d in %d bytes", k.path, k.lineStart, k.valStart, k.valEnd, k.lineEnd, len(text))
			}
			alone, err := parseTOML("k = " + text[k.valStart:k.valEnd])
			if err != nil || len(alone.keys) != 1 || !reflect.DeepEqual(alone.keys[0].value, k.value) {
				t.Fatalf("value %q of %q reads alone as %v, %v; want %#v", text[k.valStart:k.valEnd], k.path, alone, err, k.value)
			}
			if p := strings.Join(k.path, "\x00"); seen[p] && !underArray(d, k) {
				t.Fatalf("key %q given twice, accepted", k.path)
			} else {
				seen[p] = true
			}
		}
		if !utf8.ValidString(value) {
			return // TOML is UTF-8
		}
		var paths [][]string
		for _, k := range d.keys {
			paths = append(paths, k.path)
		}
		paths = append(paths, []string{"satellite", "new"})
		for _, tb := range d.tables {
			paths = append(paths, append(slices.Clone(tb.path), "new"))
		}
		for _, p := range paths {
			checkSet(t, d, p, value)
		}
	})
}

// underArray reports whether k is written under an array of tables ([[x]]), whose keys repeat.
func underArray(d *tomlDoc, k tomlKey) bool {
	for _, tb := range d.tables {
		if tb.array && hasPrefix(k.path, tb.path) {
			return true
		}
	}
	return false
}

// checkSet sets path to value in d and checks the outcome, when set does not refuse.
func checkSet(t *testing.T, d *tomlDoc, path []string, value string) {
	out, err := d.set(path, renderString(value))
	if err != nil {
		return
	}
	e, err := parseTOML(out)
	if err != nil {
		t.Fatalf("set %q = %q in\n%s\ngives a document that does not parse (%v):\n%s", path, value, d.text, err, out)
	}
	if got := e.getString(path...); got != value {
		t.Fatalf("set %q = %q in\n%s\nreads back %q:\n%s", path, value, d.text, got, out)
	}
	for _, k := range d.keys {
		if equalPath(k.path, path) {
			continue
		}
		if k2, ok := e.get(k.path...); !ok || !reflect.DeepEqual(k2.value, k.value) {
			t.Fatalf("set %q in\n%s\nchanged %q from %#v to %#v:\n%s", path, d.text, k.path, k.value, k2.value, out)
		}
	}
}
