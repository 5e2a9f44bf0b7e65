package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The algorithms Satellite negotiates: no SHA-1, no CBC, no DSA, no small groups. OpenSSH
// 8.0 and later (every supported distribution) offers all of these.
var (
	modernKeyExchanges = []string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
		"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512"}
	modernCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
		"aes128-ctr", "aes192-ctr", "aes256-ctr"}
	modernMACs = []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"}
	// modernHostKeyAlgorithms are offered when known_hosts holds no plain key for the host
	// (a @cert-authority line, or trust on first use).
	modernHostKeyAlgorithms = []string{
		ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
		ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
		ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
)

// clientConfig reads known_hosts afresh and returns the configuration of one connection. The
// host key callback remembers the key the host presented, for the error message.
func (h *Host) clientConfig() (*ssh.ClientConfig, *ssh.PublicKey, error) {
	files := []string{h.cfg.KnownHosts}
	if h.cfg.ExtraKnownHosts != "" {
		if _, err := os.Stat(h.cfg.ExtraKnownHosts); err == nil {
			files = append(files, h.cfg.ExtraKnownHosts)
		}
	}
	callback, err := knownhosts.New(files...)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh %s: load known_hosts: %w", h.cfg.Addr, err)
	}
	cfg := *h.clientCfg
	presented := new(ssh.PublicKey)
	cfg.HostKeyCallback = func(hostport string, remote net.Addr, key ssh.PublicKey) error {
		*presented = key
		err := callback(hostport, remote, key)
		var keyErr *knownhosts.KeyError
		if h.cfg.TrustOnFirstUse != nil && errors.As(err, &keyErr) && len(keyErr.Want) == 0 {
			return h.cfg.TrustOnFirstUse(hostport, key)
		}
		return err
	}
	cas, err := certAuthorities(files)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh %s: load known_hosts: %w", h.cfg.Addr, err)
	}
	cfg.HostKeyAlgorithms = hostKeyAlgorithms(callback, h.hostname, h.port, cas)
	if cfg.HostKeyAlgorithms == nil {
		cfg.HostKeyAlgorithms = modernHostKeyAlgorithms
	}
	return &cfg, presented, nil
}

// hostKeyAlgorithms asks the known_hosts callback which keys it holds for the host, so the
// handshake negotiates a host key type that can be verified (x/crypto/ssh otherwise picks its
// own preference and fails with a key mismatch when known_hosts holds another type). The
// probe key never matches, so the callback answers with a KeyError listing the known keys.
//
// A known key may be a @cert-authority line's (cas holds those): then the host is asked for a
// certificate of that key type, which the callback verifies against the authority.
func hostKeyAlgorithms(callback ssh.HostKeyCallback, hostname, port string, cas map[knownLine]bool) []string {
	p, _ := strconv.Atoi(port)
	addr := &net.TCPAddr{IP: net.ParseIP(hostname), Port: p}
	err := callback(knownhosts.Normalize(net.JoinHostPort(hostname, port)), addr, probeKey{})
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		types := algorithmsForKeyType(k.Key.Type())
		if cas[knownLine{k.Filename, k.Line}] {
			types = certAlgorithmsForKeyType(k.Key.Type())
		}
		for _, a := range types {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	// No plain key for the host (unknown, or vouched for by a @cert-authority line): keep the
	// library's defaults and let the callback decide during the handshake.
	return algos
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	default:
		return []string{t}
	}
}

func certAlgorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01}
	case ssh.KeyAlgoED25519:
		return []string{ssh.CertAlgoED25519v01}
	case ssh.KeyAlgoECDSA256:
		return []string{ssh.CertAlgoECDSA256v01}
	case ssh.KeyAlgoECDSA384:
		return []string{ssh.CertAlgoECDSA384v01}
	case ssh.KeyAlgoECDSA521:
		return []string{ssh.CertAlgoECDSA521v01}
	}
	return nil
}

// knownLine is a line of a known_hosts file, numbered from 1 as knownhosts.KnownKey numbers it.
type knownLine struct {
	file string
	line int
}

// certAuthorities are the @cert-authority lines of the known_hosts files. They are told
// apart by line, not by key: a key may be a host's own on one line and an authority on
// another.
func certAuthorities(files []string) (map[knownLine]bool, error) {
	cas := map[knownLine]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, line := range bytes.Split(data, []byte("\n")) {
			// Malformed lines were refused by knownhosts.New already.
			if marker, _, _, _, _, err := ssh.ParseKnownHosts(line); err == nil && marker == "cert-authority" {
				cas[knownLine{f, i + 1}] = true
			}
		}
	}
	return cas, nil
}

// probeKey is a public key of a type no known_hosts line can hold.
type probeKey struct{}

func (probeKey) Type() string                        { return "satellite-probe" }
func (probeKey) Marshal() []byte                     { return []byte("satellite-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// HostKeyError says the host presented a key known_hosts does not vouch for.
type HostKeyError struct {
	Addr string
	// Presented is the key the host offered, as its type and SHA256 fingerprint.
	Presented string
	Err       error
}

func (e *HostKeyError) Error() string {
	why := "not the key known_hosts holds for it"
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(e.Err, &revoked):
		why = "a key revoked in known_hosts"
	case errors.As(e.Err, &keyErr) && len(keyErr.Want) == 0:
		why = "the host is not in known_hosts"
	}
	return fmt.Sprintf("ssh %s: host key verification failed, refusing to connect: the host presented %s, %s", e.Addr, e.Presented, why)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

func classifyHandshake(addr string, err error, presented ssh.PublicKey) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	if errors.As(err, &keyErr) || errors.As(err, &revoked) {
		fp := "no key"
		if presented != nil {
			fp = presented.Type() + " " + ssh.FingerprintSHA256(presented)
		}
		return &HostKeyError{Addr: addr, Presented: fp, Err: err}
	}
	return fmt.Errorf("ssh %s: handshake: %w: %w", addr, ErrUnavailable, err)
}
