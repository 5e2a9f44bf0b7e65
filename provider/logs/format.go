package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// criLine is one line of a CRI log file (CRI spec "Container Log", kubelet
// pkg/kubelet/kuberuntime/logs): "<RFC3339Nano> <stdout|stderr> <P|F> <text>".
type criLine struct {
	ts      time.Time
	stream  string
	partial bool
	text    []byte
}

var errBadLogLine = errors.New("not a CRI log line")

// parseCRILine parses one line without its trailing newline.
func parseCRILine(line []byte) (criLine, error) {
	var l criLine
	tsEnd := bytes.IndexByte(line, ' ')
	if tsEnd <= 0 {
		return l, fmt.Errorf("%w: no timestamp", errBadLogLine)
	}
	ts, err := time.Parse(time.RFC3339Nano, string(line[:tsEnd]))
	if err != nil {
		return l, fmt.Errorf("%w: timestamp: %w", errBadLogLine, err)
	}
	rest := line[tsEnd+1:]
	streamEnd := bytes.IndexByte(rest, ' ')
	if streamEnd <= 0 {
		return l, fmt.Errorf("%w: no stream", errBadLogLine)
	}
	stream := string(rest[:streamEnd])
	if stream != "stdout" && stream != "stderr" {
		return l, fmt.Errorf("%w: stream %q", errBadLogLine, stream)
	}
	rest = rest[streamEnd+1:]
	// The tag field is "P" or "F"; files written before the tag existed have none.
	partial := false
	if tagEnd := bytes.IndexByte(rest, ' '); tagEnd >= 0 && isTag(rest[:tagEnd]) {
		partial = rest[0] == 'P'
		rest = rest[tagEnd+1:]
	} else if isTag(rest) {
		partial, rest = rest[0] == 'P', nil
	}
	return criLine{ts: ts, stream: stream, partial: partial, text: rest}, nil
}

func isTag(b []byte) bool { return len(b) == 1 && (b[0] == 'P' || b[0] == 'F') }

// logOptions are the kubectl logs options applied while copying.
type logOptions struct {
	timestamps bool
	since      time.Time // zero: no bound
	limitBytes int64     // 0: no limit
}

// logFormatter turns the bytes of a CRI log file into what kubectl logs shows: the text of
// each line, a newline after each full (F) line, partial (P) lines joined to what follows,
// optionally with the kubelet's timestamp prefix, from since on, at most limitBytes. Bytes
// after the last newline wait for the rest of their line. Write reports errLimit once the
// limit is reached.
type logFormatter struct {
	w       io.Writer
	opts    logOptions
	pending []byte
	written int64
	out     []byte
}

var errLimit = errors.New("log limit reached")

func (f *logFormatter) Write(p []byte) (int, error) {
	f.pending = append(f.pending, p...)
	f.out = f.out[:0]
	done := false
	for !done {
		i := bytes.IndexByte(f.pending, '\n')
		if i < 0 {
			break
		}
		done = f.format(f.pending[:i])
		f.pending = f.pending[i+1:]
	}
	if len(f.pending) == 0 {
		f.pending = nil // let a large drained buffer go
	}
	if len(f.out) > 0 {
		n, err := f.w.Write(f.out)
		f.written += int64(n)
		if err != nil {
			return 0, err
		}
	}
	if done {
		return len(p), errLimit
	}
	return len(p), nil
}

// format appends one CRI line's output to f.out and reports whether the limit is reached.
func (f *logFormatter) format(raw []byte) bool {
	l, err := parseCRILine(raw)
	if err != nil {
		return false // the kubelet skips lines it cannot parse, and so do we
	}
	if !f.opts.since.IsZero() && l.ts.Before(f.opts.since) {
		return false
	}
	start := len(f.out)
	if f.opts.timestamps {
		f.out = l.ts.AppendFormat(f.out, time.RFC3339Nano)
		f.out = append(f.out, ' ')
	}
	f.out = append(f.out, l.text...)
	if !l.partial {
		f.out = append(f.out, '\n')
	}
	if lim := f.opts.limitBytes; lim > 0 && f.written+int64(len(f.out)) >= lim {
		f.out = f.out[:max(start, int(lim-f.written))]
		return true
	}
	return false
}

// tailStart is the offset of the n-th last line of a file of the given size, reading
// backwards through r in blocks; 0 when the file has fewer lines.
func tailStart(r io.ReaderAt, size int64, n int) (int64, error) {
	off, _, err := tailRead(r, size, n)
	return off, err
}

// tailRead is tailStart that also returns the bytes from the offset to size when it read
// them all in its last block (the usual case: a short tail), so a reader far from the host
// need not read them again; nil when it did not.
func tailRead(r io.ReaderAt, size int64, n int) (int64, []byte, error) {
	const block = 64 << 10
	buf := make([]byte, min(block, size))
	end := size
	seen := 0
	for first := true; end > 0; first = false {
		start := max(0, end-block)
		k, err := r.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
		// whole: the last block came back in full (a file cut short since its size was read
		// gives less, and then no tail bytes).
		whole := first && k == int(end-start)
		// A final newline ends the last line; it does not start another.
		if whole && buf[k-1] == '\n' {
			seen = -1
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			seen++
			if seen == n {
				var tail []byte
				if whole {
					tail = bytes.Clone(buf[i+1 : k])
				}
				return start + int64(i) + 1, tail, nil
			}
		}
		if whole && start == 0 {
			return 0, bytes.Clone(buf[:k]), nil
		}
		end = start
	}
	return 0, nil, nil
}
