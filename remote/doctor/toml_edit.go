package doctor

import (
	"fmt"
	"regexp"
	"strings"
)

// line is the 1-based line number of offset off.
func (d *tomlDoc) line(off int) int { return strings.Count(d.text[:off], "\n") + 1 }

// get finds the key at path.
func (d *tomlDoc) get(path ...string) (tomlKey, bool) {
	for _, k := range d.keys {
		if equalPath(k.path, path) {
			return k, true
		}
	}
	return tomlKey{}, false
}

func (d *tomlDoc) getString(path ...string) string {
	k, _ := d.get(path...)
	s, _ := k.value.(string)
	return s
}

// getStrings is an array of strings, or nil when the key is missing or holds anything else.
func (d *tomlDoc) getStrings(path ...string) []string {
	k, _ := d.get(path...)
	items, _ := k.value.([]any)
	var out []string
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && equalPath(path[:len(prefix)], prefix)
}

// set returns the text with the key at path set to value (rendered TOML): in place when the
// key exists, else after the last key of its table, else in a new table at the end.
func (d *tomlDoc) set(path []string, value string) (string, error) {
	if k, ok := d.get(path...); ok {
		return d.text[:k.valStart] + value + d.text[k.valEnd:], nil
	}
	parent, name := path[:len(path)-1], path[len(path)-1]
	for _, k := range d.keys {
		if hasPrefix(path, k.path) || (hasPrefix(k.path, parent) && len(d.tablePath(k)) < len(parent)) {
			return "", fmt.Errorf("%s is set at line %d in a form this tool does not edit (inline table or dotted key); set %s by hand",
				renderPath(k.path), d.line(k.lineStart), renderPath(path))
		}
	}
	if len(parent) == 0 {
		return d.insertRoot(name + " = " + value + "\n"), nil
	}
	t := -1
	for i, tb := range d.tables {
		if equalPath(tb.path, parent) {
			if tb.array {
				return "", fmt.Errorf("%s is an array of tables; set %s by hand", renderPath(parent), name)
			}
			t = i
		}
	}
	if t < 0 {
		text := d.text
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		return text + "[" + renderPath(parent) + "]\n  " + renderKey(name) + " = " + value + "\n", nil
	}
	at, indent := d.tables[t].end, leadingSpace(d.text[d.tables[t].start:])+"  "
	for _, k := range d.keys {
		if k.table == t {
			at, indent = k.lineEnd, leadingSpace(d.text[k.lineStart:])
		}
	}
	return insertLine(d.text, at, indent+renderKey(name)+" = "+value), nil
}

// tablePath is the path of the table whose header k is written under (nil: the root). A key
// whose path is longer by more than one was written with a dotted key.
func (d *tomlDoc) tablePath(k tomlKey) []string {
	if k.table < 0 {
		return nil
	}
	return d.tables[k.table].path
}

// insertRoot adds a line to the root table: after its last key, or before the first table.
func (d *tomlDoc) insertRoot(line string) string {
	at := len(d.text)
	if len(d.tables) > 0 {
		at = d.tables[0].start
	}
	for _, k := range d.keys {
		if k.table == -1 {
			at = k.lineEnd
		}
	}
	return insertLine(d.text, at, strings.TrimSuffix(line, "\n"))
}

func insertLine(text string, at int, line string) string {
	if at > 0 && text[at-1] != '\n' {
		line = "\n" + line
	} else {
		line += "\n"
	}
	return text[:at] + line + text[at:]
}

func leadingSpace(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, " \t"))]
}

// bareKey is a key TOML reads without quotes (TOML 1.0, Keys).
var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+`)

func renderKey(k string) string {
	if bareKey.FindString(k) == k && k != "" {
		return k
	}
	return renderString(k)
}

func renderPath(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = renderKey(p)
	}
	return strings.Join(parts, ".")
}

// renderString is a TOML basic string.
func renderString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func renderStrings(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = renderString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
