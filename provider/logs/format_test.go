package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

const criTS = "2026-11-22T01:02:03.123456789Z"

// criLineCases are CRI log lines and how they read; the fuzz target starts from them too.
var criLineCases = []struct {
	in      string
	stream  string
	partial bool
	text    string
	wantErr bool
}{
	{in: criTS + " stdout F hello world", stream: "stdout", text: "hello world"},
	{in: criTS + " stderr F oops", stream: "stderr", text: "oops"},
	{in: criTS + " stdout P part", stream: "stdout", partial: true, text: "part"},
	{in: criTS + " stdout F ", stream: "stdout", text: ""},
	{in: criTS + " stdout F", stream: "stdout", text: ""},
	{in: criTS + " stdout F  two leading spaces", stream: "stdout", text: " two leading spaces"},
	{in: criTS + " stdout legacy line without tag", stream: "stdout", text: "legacy line without tag"},
	{in: criTS + " stdout F P F", stream: "stdout", text: "P F"},
	{in: "garbage", wantErr: true},
	{in: "", wantErr: true},
	{in: "2026-13-45T00:00:00Z stdout F x", wantErr: true},
	{in: criTS + " stdin F x", wantErr: true},
	{in: criTS + " stdout", wantErr: true},
}

func TestParseCRILine(t *testing.T) {
	t.Parallel()
	for _, tt := range criLineCases {
		l, err := parseCRILine([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseCRILine(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if l.stream != tt.stream || l.partial != tt.partial || string(l.text) != tt.text {
			t.Errorf("parseCRILine(%q) = {%s %v %q}, want {%s %v %q}", tt.in, l.stream, l.partial, l.text, tt.stream, tt.partial, tt.text)
		}
	}
}

// criLogFile is a CRI log file with a line that is not one, a partial line, and an
// unfinished last line.
var criLogFile = strings.Join([]string{
	"2026-11-22T01:00:00.000000001Z stdout F one",
	"2026-11-22T01:00:01Z stderr F two",
	"not a log line",
	"2026-11-22T01:00:02Z stdout P thr",
	"2026-11-22T01:00:02.5Z stdout F ee",
	"2026-11-22T01:00:03Z stdout F four",
	"2026-11-22T01:00:04Z stdout F unfinished",
}, "\n") // the last line has no newline yet: not shown

func TestCopyLogs(t *testing.T) {
	t.Parallel()
	file := criLogFile
	tests := []struct {
		name string
		opts logOptions
		want string
	}{
		{name: "plain", want: "one\ntwo\nthree\nfour\n"},
		{name: "timestamps", opts: logOptions{timestamps: true},
			want: "2026-11-22T01:00:00.000000001Z one\n2026-11-22T01:00:01Z two\n2026-11-22T01:00:02Z thr2026-11-22T01:00:02.5Z ee\n2026-11-22T01:00:03Z four\n"},
		{name: "since", opts: logOptions{since: time.Date(2026, 11, 22, 1, 0, 1, 0, time.UTC)}, want: "two\nthree\nfour\n"},
		{name: "limit", opts: logOptions{limitBytes: 6}, want: "one\ntw"},
		{name: "limit exact", opts: logOptions{limitBytes: 4}, want: "one\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := copyLogs(&out, strings.NewReader(file), tt.opts); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if out.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, out.String(), tt.want)
		}
	}
}

func TestLogFormatterAcrossWrites(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	f := &logFormatter{w: &out}
	// A line split across writes, as a followed file delivers it.
	for _, chunk := range []string{"2026-11-22T01:00:00Z stdout F he", "llo\n2026-11-22T01:00:01Z std", "err F world\n2026"} {
		if _, err := f.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "hello\nworld\n" {
		t.Errorf("got %q", out.String())
	}
}

func TestTailStart(t *testing.T) {
	t.Parallel()
	file := "a\nbb\nccc\n"
	tests := []struct {
		n    int
		want string
	}{
		{1, "ccc\n"}, {2, "bb\nccc\n"}, {3, file}, {10, file},
	}
	for _, tt := range tests {
		off, err := tailStart(strings.NewReader(file), int64(len(file)), tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := file[off:]; got != tt.want {
			t.Errorf("tail %d = %q, want %q", tt.n, got, tt.want)
		}
	}
	// Larger than one block, and a file whose last line has no newline yet.
	big := strings.Repeat("x", 70<<10) + "\nlast\npartial"
	off, _ := tailStart(strings.NewReader(big), int64(len(big)), 1)
	if got := big[off:]; got != "partial" {
		t.Errorf("tail of unterminated file starts at %d (%d bytes), want the last line", off, len(got))
	}
	off, _ = tailStart(strings.NewReader(big), int64(len(big)), 2)
	if got := big[off:]; got != "last\npartial" {
		t.Errorf("tail 2 starts at %d (%d bytes)", off, len(got))
	}
}

// copyLogs formats all of r into w, as a reader of a whole file does (see logFormatter).
func copyLogs(w io.Writer, r io.Reader, opts logOptions) error {
	_, err := io.Copy(&logFormatter{w: w, opts: opts}, r)
	if errors.Is(err, errLimit) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	return nil
}

// readCRILine is a plain reading of a CRI log line, to check parseCRILine against:
// "<RFC3339Nano> <stdout|stderr> <P|F> <text>", or without the tag in files written before
// it existed.
func readCRILine(line string) (l criLine, ok bool) {
	ts, rest, ok1 := strings.Cut(line, " ")
	stream, rest, ok2 := strings.Cut(rest, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok1 || !ok2 || err != nil || (stream != "stdout" && stream != "stderr") {
		return l, false
	}
	l = criLine{ts: t, stream: stream, text: []byte(rest)}
	switch {
	case rest == "P" || rest == "F":
		l.partial, l.text = rest == "P", []byte{}
	case strings.HasPrefix(rest, "P ") || strings.HasPrefix(rest, "F "):
		l.partial, l.text = rest[0] == 'P', []byte(rest[2:])
	}
	return l, true
}

func sameCRILine(a, b criLine) bool {
	return a.ts.Equal(b.ts) && a.stream == b.stream && a.partial == b.partial && bytes.Equal(a.text, b.text)
}

// FuzzParseCRILine: a line parses as readCRILine reads it, or fails with errBadLogLine; a
// parsed line's text is the end of the line, and the line printed back in the CRI format
// parses to the same line.
func FuzzParseCRILine(f *testing.F) {
	for _, tt := range criLineCases {
		f.Add([]byte(tt.in))
	}
	for _, l := range strings.Split(criLogFile, "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte("2026-11-22T01:02:03+01:00 stderr P \x00\r"))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseCRILine(line)
		want, ok := readCRILine(string(line))
		switch {
		case err != nil && !errors.Is(err, errBadLogLine):
			t.Fatalf("error %v is not errBadLogLine", err)
		case (err == nil) != ok:
			t.Fatalf("parseCRILine(%q): %v; a plain reading says ok=%v", line, err, ok)
		case err != nil:
			return
		case !sameCRILine(l, want):
			t.Fatalf("parseCRILine(%q) = %+v, want %+v", line, l, want)
		case !bytes.HasSuffix(line, l.text):
			t.Fatalf("text %q is not the end of %q", l.text, line)
		}
		tag := "F"
		if l.partial {
			tag = "P"
		}
		printed := l.ts.Format(time.RFC3339Nano) + " " + l.stream + " " + tag + " " + string(l.text)
		if again, err := parseCRILine([]byte(printed)); err != nil || !sameCRILine(again, l) {
			t.Fatalf("printed back as %q: %+v, %v; want %+v", printed, again, err, l)
		}
	})
}

// FuzzLogFormatter: whatever the file and however it arrives in writes, what kubectl logs
// shows is the text of each complete line that parses (readCRILine), from since on, with
// timestamps if asked, a newline after full lines, cut at limitBytes.
func FuzzLogFormatter(f *testing.F) {
	f.Add([]byte(criLogFile+"\n"), uint8(7), false, uint16(0), int64(0))
	f.Add([]byte(criLogFile), uint8(1), true, uint16(40), time.Date(2026, 11, 22, 1, 0, 1, 0, time.UTC).UnixNano())
	f.Add([]byte("2026-11-22T01:00:00Z stdout F he\nllo\n2026-11-22T01:00:01Z stderr F world\n2026"), uint8(3), false, uint16(6), int64(0))
	f.Fuzz(func(t *testing.T, file []byte, chunk uint8, timestamps bool, limit uint16, since int64) {
		opts := logOptions{timestamps: timestamps, limitBytes: int64(limit)}
		if since != 0 {
			opts.since = time.Unix(0, since)
		}
		var want []byte
		lines := strings.Split(string(file), "\n")
		for _, line := range lines[:len(lines)-1] { // the last has no newline yet
			l, ok := readCRILine(line)
			if !ok || !opts.since.IsZero() && l.ts.Before(opts.since) {
				continue
			}
			if timestamps {
				want = append(want, l.ts.Format(time.RFC3339Nano)+" "...)
			}
			want = append(want, l.text...)
			if !l.partial {
				want = append(want, '\n')
			}
		}
		if limit > 0 && len(want) > int(limit) {
			want = want[:limit]
		}
		var out bytes.Buffer
		lf := &logFormatter{w: &out, opts: opts}
		size := max(1, int(chunk))
		for rest := file; len(rest) > 0; {
			p := rest[:min(size, len(rest))]
			rest = rest[len(p):]
			n, err := lf.Write(p)
			if n != len(p) {
				t.Fatalf("Write took %d bytes of %d", n, len(p))
			}
			if errors.Is(err, errLimit) {
				if limit == 0 || out.Len() != int(limit) {
					t.Fatalf("limit reached at %d bytes, limit %d", out.Len(), limit)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("in writes of %d: %q, want %q", size, out.Bytes(), want)
		}
	})
}

// FuzzTailStart: the offset of the n-th last line is the one a plain backwards count of
// newlines finds (a final newline ends the last line), in files spanning several blocks.
func FuzzTailStart(f *testing.F) {
	f.Add([]byte("a\nbb\nccc\n"), uint8(2), uint8(0))
	f.Add([]byte(criLogFile), uint8(3), uint8(40))
	f.Add([]byte("x\n"), uint8(1), uint8(255))
	f.Add([]byte(""), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, n, repeat uint8) {
		file := bytes.Repeat(data, 1+int(repeat)*(70<<10)/max(1, len(data))/255) // up to 70 KiB and more: two blocks
		lines := 1 + int(n)
		body := bytes.TrimSuffix(file, []byte("\n"))
		want, seen := int64(0), 0
		for i := len(body) - 1; i >= 0; i-- {
			if body[i] == '\n' {
				if seen++; seen == lines {
					want = int64(i + 1)
					break
				}
			}
		}
		got, tail, err := tailRead(bytes.NewReader(file), int64(len(file)), lines)
		if err != nil || got != want {
			t.Fatalf("tail %d of %d bytes: %d, %v; want %d", lines, len(file), got, err, want)
		}
		if tail != nil && !bytes.Equal(tail, file[got:]) {
			t.Fatalf("tail %d of %d bytes: the bytes read ahead are not the file's from %d", lines, len(file), got)
		}
		if tail == nil && len(file) > int(got) && len(file) <= 64<<10 {
			t.Fatalf("tail %d of a %d-byte file: no bytes read ahead, though one block held them", lines, len(file))
		}
	})
}
