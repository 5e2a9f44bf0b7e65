package doctor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlDoc is a TOML document kept as its text, with the position of every key/value and table
// header, so that one value can be changed or added without rewriting the rest: an operator's
// config.toml keeps its comments, order and layout, and the diff shows only what changed.
//
// go-toml's parser reads the document (and refuses what is not TOML); tomlDoc keeps the byte
// ranges it reports, which set (toml_edit.go) splices.
type tomlDoc struct {
	text   string
	keys   []tomlKey
	tables []tomlTable
}

type tomlTable struct {
	path       []string
	start, end int // offsets of the header line; end is after its newline
	array      bool
}

type tomlKey struct {
	path             []string // full path from the root table
	table            int      // index in tables of the table it is written under; -1: root
	lineStart        int      // offset of the start of the line the key is on
	valStart, valEnd int      // offsets of the value's text
	lineEnd          int      // offset after the newline that ends the value's last line
	value            any      // string, bool, int64, []any, tomlInline or tomlRaw
}

// tomlInline is an inline table's value; tomlRaw any other scalar (float, date), as written.
type (
	tomlInline struct{}
	tomlRaw    string
)

func parseTOML(text string) (*tomlDoc, error) {
	p := &unstable.Parser{}
	p.Reset([]byte(text))
	d := &tomlDoc{text: text}
	table, tablePath := -1, []string(nil)
	defined := map[string]bool{} // keys so far, to refuse one given twice (TOML 1.0, Keys)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind == unstable.Table || e.Kind == unstable.ArrayTable {
			d.tables = append(d.tables, d.table(e))
			table, tablePath = len(d.tables)-1, d.tables[len(d.tables)-1].path
			continue
		}
		k := d.keyValue(e)
		k.path = append(append([]string(nil), tablePath...), k.path...)
		k.table = table
		if id := d.keyID(k); defined[id] {
			return nil, fmt.Errorf("line %d: %s given twice", d.line(k.lineStart), renderPath(k.path))
		} else {
			defined[id] = true
		}
		d.keys = append(d.keys, k)
	}
	if err := p.Error(); err != nil {
		return nil, parseError(p, err)
	}
	return d, nil
}

// parseError says on which line the parser stopped.
func parseError(p *unstable.Parser, err error) error {
	var perr *unstable.ParserError
	if !errors.As(err, &perr) || perr.Highlight == nil {
		return err
	}
	return fmt.Errorf("line %d: %w", p.Shape(p.Range(perr.Highlight)).Start.Line, err)
}

// table is a [table] or [[array of tables]] header: its line, from the ranges of its key.
func (d *tomlDoc) table(e *unstable.Node) tomlTable {
	path, first, last := keyPath(e.Key())
	return tomlTable{
		path:  path,
		start: d.lineStart(int(first.Offset)),
		end:   d.lineEnd(int(last.Offset + last.Length)),
		array: e.Kind == unstable.ArrayTable,
	}
}

// keyValue is a key/value expression: the key's line, the value's text and the lines it takes.
// The parser reports the range from the key to the end of the value; the value starts after
// the '=' that follows the key.
func (d *tomlDoc) keyValue(e *unstable.Node) tomlKey {
	path, _, last := keyPath(e.Key())
	valStart := int(last.Offset + last.Length)
	valStart += len(d.text[valStart:]) - len(strings.TrimLeft(d.text[valStart:], " \t"))
	valStart++ // =
	valStart += len(d.text[valStart:]) - len(strings.TrimLeft(d.text[valStart:], " \t"))
	valEnd := int(e.Raw.Offset + e.Raw.Length)
	return tomlKey{
		path:      path,
		lineStart: d.lineStart(int(e.Raw.Offset)),
		valStart:  valStart,
		valEnd:    valEnd,
		lineEnd:   d.lineEnd(valEnd),
		value:     tomlValue(e.Value()),
	}
}

// keyPath is a (dotted) key's parts and the ranges of its first and last part.
func keyPath(it unstable.Iterator) (path []string, first, last unstable.Range) {
	for it.Next() {
		n := it.Node()
		if path == nil {
			first = n.Raw
		}
		path, last = append(path, string(n.Data)), n.Raw
	}
	return path, first, last
}

func tomlValue(n *unstable.Node) any {
	switch n.Kind {
	case unstable.String:
		return string(n.Data)
	case unstable.Bool:
		return string(n.Data) == "true"
	case unstable.Integer:
		if v, err := strconv.ParseInt(strings.ReplaceAll(string(n.Data), "_", ""), 0, 64); err == nil {
			return v
		}
	case unstable.Array:
		var items []any
		for it := n.Children(); it.Next(); {
			items = append(items, tomlValue(it.Node()))
		}
		return items
	case unstable.InlineTable:
		return tomlInline{}
	}
	return tomlRaw(n.Data)
}

// lineStart is the offset of the start of the line off is on.
func (d *tomlDoc) lineStart(off int) int { return strings.LastIndexByte(d.text[:off], '\n') + 1 }

// lineEnd is the offset after the newline that ends the line off is on (a header or a value
// is followed on its line only by blanks and a comment), or the end of the text.
func (d *tomlDoc) lineEnd(off int) int {
	if i := strings.IndexByte(d.text[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(d.text)
}

// keyID tells keys apart: by their path, and under an array of tables ([[x]], each header a
// new table) by the table too.
func (d *tomlDoc) keyID(k tomlKey) string {
	id := strings.Join(k.path, "\x00")
	for _, t := range d.tables {
		if t.array && k.table >= 0 && hasPrefix(d.tables[k.table].path, t.path) {
			return fmt.Sprint(k.table, "\x00", id)
		}
	}
	return id
}
