package doctor

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// tomlDoc is a TOML document kept as its text, with the position of every key/value and table
// header, so that one value can be changed or added without rewriting the rest: an operator's
// config.toml keeps its comments, order and layout, and the diff shows only what changed.
//
// It reads the part of TOML that containerd configs use (tables, dotted and quoted keys,
// strings, booleans, numbers, arrays, inline tables; TOML 1.0 section 2-10) and refuses
// anything it does not understand rather than guessing.
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

type tomlParser struct {
	s   string
	pos int
}

func parseTOML(text string) (*tomlDoc, error) {
	p := &tomlParser{s: text}
	d := &tomlDoc{text: text}
	table, tablePath := -1, []string(nil)
	defined := map[string]bool{} // keys so far, to refuse one given twice (TOML 1.0, Keys)
	for {
		p.skipBlank()
		if p.pos >= len(p.s) {
			return d, nil
		}
		lineStart := strings.LastIndexByte(p.s[:p.pos], '\n') + 1
		if p.s[p.pos] == '[' {
			t, err := p.header()
			if err != nil {
				return nil, p.at(err)
			}
			t.start, t.end = lineStart, p.pos
			d.tables = append(d.tables, t)
			table, tablePath = len(d.tables)-1, t.path
			continue
		}
		k, err := p.keyValue()
		if err != nil {
			return nil, p.at(err)
		}
		k.path = append(append([]string(nil), tablePath...), k.path...)
		k.table, k.lineStart = table, lineStart
		if id := d.keyID(k); defined[id] {
			return nil, p.at(fmt.Errorf("%s given twice", renderPath(k.path)))
		} else {
			defined[id] = true
		}
		d.keys = append(d.keys, k)
	}
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

// at says where the parser stopped.
func (p *tomlParser) at(err error) error {
	line := strings.Count(p.s[:min(p.pos, len(p.s))], "\n") + 1
	return fmt.Errorf("line %d: %w", line, err)
}

func (p *tomlParser) header() (tomlTable, error) {
	t := tomlTable{array: strings.HasPrefix(p.s[p.pos:], "[[")}
	closing := "]"
	p.pos++
	if t.array {
		p.pos++
		closing = "]]"
	}
	path, err := p.keyPath()
	if err != nil {
		return t, err
	}
	p.skipSpaces()
	if !strings.HasPrefix(p.s[p.pos:], closing) {
		return t, fmt.Errorf("table header: want %q", closing)
	}
	p.pos += len(closing)
	t.path = path
	return t, p.endOfLine()
}

func (p *tomlParser) keyValue() (tomlKey, error) {
	var k tomlKey
	path, err := p.keyPath()
	if err != nil {
		return k, err
	}
	p.skipSpaces()
	if p.pos >= len(p.s) || p.s[p.pos] != '=' {
		return k, errors.New("want '=' after a key")
	}
	p.pos++
	p.skipSpaces()
	k.path, k.valStart = path, p.pos
	if k.value, err = p.value(); err != nil {
		return k, err
	}
	k.valEnd = p.pos
	if err := p.endOfLine(); err != nil {
		return k, err
	}
	k.lineEnd = p.pos
	return k, nil
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+`)

func (p *tomlParser) keyPath() ([]string, error) {
	var path []string
	for {
		p.skipSpaces()
		if p.pos >= len(p.s) {
			return nil, errors.New("unexpected end in a key")
		}
		var part string
		switch c := p.s[p.pos]; c {
		case '"', '\'':
			s, err := p.str(c, false)
			if err != nil {
				return nil, err
			}
			part = s
		default:
			m := bareKey.FindString(p.s[p.pos:])
			if m == "" {
				return nil, fmt.Errorf("bad key at %q", excerpt(p.s[p.pos:]))
			}
			part = m
			p.pos += len(m)
		}
		path = append(path, part)
		p.skipSpaces()
		if p.pos >= len(p.s) || p.s[p.pos] != '.' {
			return path, nil
		}
		p.pos++
	}
}

func (p *tomlParser) value() (any, error) {
	if p.pos >= len(p.s) {
		return nil, errors.New("missing value")
	}
	switch c := p.s[p.pos]; c {
	case '"', '\'':
		return p.str(c, true)
	case '[':
		return p.array()
	case '{':
		return p.inlineTable()
	}
	end := p.pos
	for end < len(p.s) && !strings.ContainsRune(" \t\r\n,]}#", rune(p.s[end])) {
		end++
	}
	tok := p.s[p.pos:end]
	p.pos = end
	switch tok {
	case "":
		return nil, errors.New("missing value")
	case "true", "false":
		return tok == "true", nil
	}
	if n, err := strconv.ParseInt(strings.ReplaceAll(tok, "_", ""), 0, 64); err == nil {
		return n, nil
	}
	return tomlRaw(tok), nil
}

// str reads a basic ("...") or literal ('...') string, or their multi-line forms when
// multiline is allowed (values, not keys).
func (p *tomlParser) str(quote byte, multiline bool) (string, error) {
	q3 := strings.Repeat(string(quote), 3)
	if multiline && strings.HasPrefix(p.s[p.pos:], q3) {
		end := p.pos + 3
		for {
			i := strings.Index(p.s[end:], q3)
			if i < 0 {
				return "", errors.New("unterminated multi-line string")
			}
			end += i
			if quote == '\'' || !escaped(p.s, end) {
				break
			}
			end++
		}
		s := p.s[p.pos+3 : end]
		p.pos = end + 3
		return s, nil // not unescaped: only skipped over, never read by Satellite
	}
	var b strings.Builder
	for i := p.pos + 1; i < len(p.s); i++ {
		c := p.s[i]
		switch {
		case c == quote:
			p.pos = i + 1
			return b.String(), nil
		case c == '\n':
			return "", errors.New("newline in a string")
		case c == '\\' && quote == '"':
			r, n, err := unescape(p.s[i+1:])
			if err != nil {
				return "", err
			}
			b.WriteString(r)
			i += n
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

// escaped reports whether the character at i is preceded by an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for i--; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func unescape(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("unterminated escape")
	}
	simple := map[byte]string{'b': "\b", 't': "\t", 'n': "\n", 'f': "\f", 'r': "\r", '"': `"`, '\\': `\`}
	if r, ok := simple[s[0]]; ok {
		return r, 1, nil
	}
	n := map[byte]int{'u': 4, 'U': 8}[s[0]]
	if n == 0 || len(s) < 1+n {
		return "", 0, fmt.Errorf("bad escape \\%c", s[0])
	}
	code, err := strconv.ParseUint(s[1:1+n], 16, 32)
	if err != nil {
		return "", 0, fmt.Errorf("bad escape \\%s", s[:1+n])
	}
	return string(rune(code)), 1 + n, nil
}

func (p *tomlParser) array() ([]any, error) {
	p.pos++ // [
	var items []any
	for {
		p.skipBlank()
		if p.pos < len(p.s) && p.s[p.pos] == ']' {
			p.pos++
			return items, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skipBlank()
		if p.pos >= len(p.s) {
			return nil, errors.New("unterminated array")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return items, nil
		default:
			return nil, fmt.Errorf("array: want ',' or ']' at %q", excerpt(p.s[p.pos:]))
		}
	}
}

func (p *tomlParser) inlineTable() (tomlInline, error) {
	p.pos++ // {
	for {
		p.skipSpaces()
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return tomlInline{}, nil
		}
		if _, err := p.keyPath(); err != nil {
			return tomlInline{}, err
		}
		p.skipSpaces()
		if p.pos >= len(p.s) || p.s[p.pos] != '=' {
			return tomlInline{}, errors.New("inline table: want '='")
		}
		p.pos++
		p.skipSpaces()
		if _, err := p.value(); err != nil {
			return tomlInline{}, err
		}
		p.skipSpaces()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
		}
	}
}

func (p *tomlParser) skipSpaces() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (p *tomlParser) skipBlank() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		case '#':
			p.skipComment()
		default:
			return
		}
	}
}

func (p *tomlParser) skipComment() {
	if i := strings.IndexByte(p.s[p.pos:], '\n'); i >= 0 {
		p.pos += i
	} else {
		p.pos = len(p.s)
	}
}

// endOfLine consumes trailing spaces, a comment and the newline after a header or value.
func (p *tomlParser) endOfLine() error {
	p.skipSpaces()
	if p.pos < len(p.s) && p.s[p.pos] == '#' {
		p.skipComment()
	}
	switch {
	case p.pos >= len(p.s):
		return nil
	case strings.HasPrefix(p.s[p.pos:], "\r\n"):
		p.pos += 2
	case p.s[p.pos] == '\n':
		p.pos++
	default:
		return fmt.Errorf("unexpected %q after a value", excerpt(p.s[p.pos:]))
	}
	return nil
}

func excerpt(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}
