package provider

import (
	"bufio"
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

// copyLogs reads a CRI log file from r and writes what kubectl logs shows to w: the text of
// each line, a newline after each full (F) line, partial (P) lines joined to what follows,
// optionally with the kubelet's timestamp prefix, from since on, at most limitBytes. It
// returns nil at the end of r or once the limit is reached.
func copyLogs(w io.Writer, r io.Reader, opts logOptions) error {
	br := bufio.NewReaderSize(r, 64<<10)
	written := int64(0)
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 && raw[len(raw)-1] == '\n' {
			if done, werr := writeLogLine(w, raw[:len(raw)-1], opts, &written); werr != nil || done {
				return werr
			}
		}
		// A last line without its newline is still being written: it is left for the next read.
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
}

func writeLogLine(w io.Writer, raw []byte, opts logOptions, written *int64) (done bool, err error) {
	l, perr := parseCRILine(raw)
	if perr != nil {
		return false, nil // the kubelet skips lines it cannot parse, and so do we
	}
	if !opts.since.IsZero() && l.ts.Before(opts.since) {
		return false, nil
	}
	var out []byte
	if opts.timestamps {
		out = append(out, l.ts.Format(time.RFC3339Nano)...)
		out = append(out, ' ')
	}
	out = append(out, l.text...)
	if !l.partial {
		out = append(out, '\n')
	}
	if opts.limitBytes > 0 && *written+int64(len(out)) >= opts.limitBytes {
		out = out[:opts.limitBytes-*written]
		done = true
	}
	n, err := w.Write(out)
	*written += int64(n)
	if err != nil {
		return true, err
	}
	return done, nil
}
