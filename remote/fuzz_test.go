package remote

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// unquote reads a word made of POSIX shell single-quoted strings and backslash-escaped single
// quotes (POSIX.1-2017 XCU 2.2.1-2.2.2), all that Quote may write; not ok for anything else.
func unquote(w string) (string, bool) {
	var b strings.Builder
	for w != "" {
		switch {
		case strings.HasPrefix(w, `\'`):
			b.WriteByte('\'')
			w = w[2:]
		case w[0] == '\'':
			end := strings.IndexByte(w[1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(w[1 : 1+end])
			w = w[2+end:]
		default:
			return "", false
		}
	}
	return b.String(), true
}

// FuzzQuote: whatever a host printed (a runtime's binary, a registry, a CDI directory), Quote
// makes it one shell word that stands for exactly it, for a plain reading of quoting and for
// the shell itself.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"plain", "with space", "it's", "$(rm -rf /)", "", "'", "''\\'", "a\nb", "`id`;\"$HOME\"\\"} {
		f.Add(s)
	}
	sh, _ := exec.LookPath("sh")
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if got, ok := unquote(q); !ok || got != s {
			t.Fatalf("Quote(%q) = %s, which reads as %q (ok %v)", s, q, got, ok)
		}
		if sh == "" || strings.IndexByte(s, 0) >= 0 { // no argument holds a NUL
			return
		}
		out, err := exec.Command(sh, "-c", "printf %s "+q).Output()
		if err != nil || string(out) != s {
			t.Fatalf("sh: printf %%s %s printed %q, %v; want %q", q, out, err, s)
		}
	})
}

// Public keys for the known_hosts seeds: an ed25519 key made from a fixed seed, and an RSA
// and an ECDSA key from ssh-keygen.
const (
	seedRSA   = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDtdJoHxhDASQDIePguSA/BTUIFclcqyBFRhAFkkChPJKlF6VFDnPGRknueNAq9lCAa1jtpgbtXn82MKVRmcq7AKQ2P9P2ss1wTxREo1yZOu1aQrZSRGYVG8H0GIdL8dhwz/8QOlkKOivv+bo6JWItAsclzcHsx1oPDiItd66bxxWBM5QrCDEjBw6Qunf5p6qCc/wufZHpVFxVRIPO9RIP21tKx6nO/hlKumEw0xdEODR/bXE7VxGIH+0YMHh1tPCHm8XVRJBPQH2RCnBOGuchO1QdbtVXKigNcCKnq+j96Jzub7rW9gCV2ARnkGmNP2CcZnzIvjlgBf5rmSsQgFcu1"
	seedECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCCAs1CtnZoT019PH+U91eIT9Po2gdxjMkt2BSTXdczYFinwHxyuCndA9QSWJqjJ/7MsompYtAzoF8lxsCW5em0="
)

func seedEd25519(t testing.TB) string {
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// caLines reads known_hosts the way x/crypto's knownhosts does (knownhosts.go, parseLine:
// words split at spaces and tabs, an optional marker, host patterns, key type, base64 key)
// and returns the lines that are @cert-authority lines, by number.
func caLines(data []byte) map[int]bool {
	cas := map[int]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(strings.TrimSuffix(line, "\r"), " \t")
		words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(words) < 4 || words[0] != "@cert-authority" {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(words[3])
		if err != nil {
			continue
		}
		if key, err := ssh.ParsePublicKey(blob); err == nil && key.Type() == words[2] {
			cas[i+1] = true
		}
	}
	return cas
}

// FuzzKnownHosts: for any known_hosts file that knownhosts.New accepts, the handshake offers
// the host key algorithms of exactly the lines the known_hosts callback matches for the host:
// certificate algorithms for a @cert-authority line, plain ones for a host key line.
func FuzzKnownHosts(f *testing.F) {
	ed := seedEd25519(f)
	for _, s := range []string{
		"[192.0.2.1]:2222 " + ed + "\n",
		"@cert-authority [192.0.2.1]:2222 " + ed + "\n",
		"@cert-authority *.example.com " + ed + " ca@example\n[192.0.2.1]:2222 " + seedRSA + "\n",
		"# comment\n\n[192.0.2.1]:2222,192.0.2.9 " + seedECDSA + " a comment of many words\r\n@cert-authority [192.0.2.1]:* " + seedRSA + "\n",
		"@revoked [192.0.2.1]:2222 " + seedRSA + "\n[192.0.2.1]:2222 " + ed + "\n!192.0.2.1 " + seedECDSA + "\n",
		"[192.0.2.1]:2222 " + seedRSA + "\n@cert-authority [192.0.2.1]:2222 " + seedRSA + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		callback, err := knownhosts.New(file)
		if err != nil {
			return // refused before any connection (clientConfig)
		}
		cas, err := certAuthorities([]string{file})
		if err != nil {
			t.Fatal(err)
		}
		lines := caLines(data)
		if len(cas) != len(lines) {
			t.Fatalf("certificate authorities %v, want the lines %v", cas, lines)
		}
		for n := range lines {
			if !cas[knownLine{file, n}] {
				t.Fatalf("certificate authorities %v, want the lines %v", cas, lines)
			}
		}
		const host, port = "192.0.2.1", "2222"
		got := hostKeyAlgorithms(callback, host, port, cas)
		var keyErr *knownhosts.KeyError
		err = callback(knownhosts.Normalize(net.JoinHostPort(host, port)), &net.TCPAddr{IP: net.ParseIP(host), Port: 2222}, probeKey{})
		if !errors.As(err, &keyErr) {
			if got != nil {
				t.Fatalf("callback says %v, yet algorithms %q", err, got)
			}
			return
		}
		var wantAlgos []string
		for _, k := range keyErr.Want {
			algos := algorithmsForKeyType(k.Key.Type())
			if lines[k.Line] {
				algos = certAlgorithmsForKeyType(k.Key.Type())
			}
			for _, a := range algos {
				if !slices.Contains(wantAlgos, a) {
					wantAlgos = append(wantAlgos, a)
				}
			}
		}
		if !slices.Equal(got, wantAlgos) {
			t.Fatalf("algorithms %q, want %q (known keys on lines %v, CA lines %v)", got, wantAlgos, wantLines(keyErr), lines)
		}
	})
}

func wantLines(e *knownhosts.KeyError) []int {
	var n []int
	for _, k := range e.Want {
		n = append(n, k.Line)
	}
	return n
}
