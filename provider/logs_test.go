package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseCRILine(t *testing.T) {
	t.Parallel()
	ts := "2026-11-22T01:02:03.123456789Z"
	tests := []struct {
		in      string
		stream  string
		partial bool
		text    string
		wantErr bool
	}{
		{in: ts + " stdout F hello world", stream: "stdout", text: "hello world"},
		{in: ts + " stderr F oops", stream: "stderr", text: "oops"},
		{in: ts + " stdout P part", stream: "stdout", partial: true, text: "part"},
		{in: ts + " stdout F ", stream: "stdout", text: ""},
		{in: ts + " stdout F", stream: "stdout", text: ""},
		{in: ts + " stdout F  two leading spaces", stream: "stdout", text: " two leading spaces"},
		{in: ts + " stdout legacy line without tag", stream: "stdout", text: "legacy line without tag"},
		{in: ts + " stdout F P F", stream: "stdout", text: "P F"},
		{in: "garbage", wantErr: true},
		{in: "", wantErr: true},
		{in: "2026-13-45T00:00:00Z stdout F x", wantErr: true},
		{in: ts + " stdin F x", wantErr: true},
		{in: ts + " stdout", wantErr: true},
	}
	for _, tt := range tests {
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

func TestCopyLogs(t *testing.T) {
	t.Parallel()
	file := strings.Join([]string{
		"2026-11-22T01:00:00.000000001Z stdout F one",
		"2026-11-22T01:00:01Z stderr F two",
		"not a log line",
		"2026-11-22T01:00:02Z stdout P thr",
		"2026-11-22T01:00:02.5Z stdout F ee",
		"2026-11-22T01:00:03Z stdout F four",
		"2026-11-22T01:00:04Z stdout F unfinished",
	}, "\n") // the last line has no newline yet: not shown
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
