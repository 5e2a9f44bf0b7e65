package doctor

import (
	"strings"
	"testing"
)

func TestParseTOML(t *testing.T) {
	t.Parallel()
	text := `# comment
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
	d, err := parseTOML(text)
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

func TestParseTOMLErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"a = ",
		"a = \"unterminated\n",
		"[table\n",
		"a = [1, 2\n",
		"a = 1 b = 2\n",
		"= 1\n",
		"a = \"\\q\"\n",
	} {
		if _, err := parseTOML(bad); err == nil {
			t.Errorf("parseTOML(%q) succeeded", bad)
		}
	}
}

func TestTOMLSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
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
	for _, tt := range tests {
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
