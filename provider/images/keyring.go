package images

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
)

// Credential is a user and password for a registry, as containerd takes them in a CRI
// PullImage request (runtimeapi.AuthConfig).
type Credential struct {
	Username, Password string
	// source is the pull secret it came from; nil for one of a credential provider.
	source *secretSource
}

// keyring holds the credentials of a pod's image pull secrets by registry location, and
// answers which to try for an image, as the kubelet's BasicDockerKeyring does
// (pkg/credentialprovider/keyring.go): a location is a host, with a port and a path when it
// has them, `*` globs allowed in the host's labels; every location that matches the image
// counts, the most specific first; the default registry's location serves images of the
// default registry when nothing else matches.
type keyring struct {
	index []string // locations, reverse-sorted, so that longer paths come first
	creds map[string][]Credential
}

// dockerConfigEntry is one registry's entry of a .dockercfg or .dockerconfigjson. An auth
// field, base64 of user:password, wins over username and password (the kubelet's
// DockerConfigEntry.UnmarshalJSON).
type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

func (e dockerConfigEntry) credential() (Credential, error) {
	if e.Auth == "" {
		return Credential{Username: e.Username, Password: e.Password}, nil
	}
	b, err := base64.StdEncoding.DecodeString(e.Auth)
	if err != nil {
		return Credential{}, errors.New("unable to parse auth field, must be formatted as base64(username:password)")
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return Credential{}, errors.New("unable to parse auth field, must be formatted as base64(username:password)")
	}
	return Credential{Username: user, Password: strings.Trim(pass, "\x00")}, nil
}

// dockerConfig reads the registries of an image pull secret, of type
// kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg; a secret of another type, or
// without its key, holds none (the kubelet ignores it too). Errors never quote the content.
func dockerConfig(s *corev1.Secret) (map[string]dockerConfigEntry, error) {
	var cfg map[string]dockerConfigEntry
	switch b := s.Data[corev1.DockerConfigJsonKey]; {
	case s.Type == corev1.SecretTypeDockerConfigJson && len(b) > 0:
		var doc struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %s is not a Docker config.json: %s", s.Namespace, s.Name, corev1.DockerConfigJsonKey, jsonProblem(err))
		}
		cfg = doc.Auths
	case s.Type == corev1.SecretTypeDockercfg && len(s.Data[corev1.DockerConfigKey]) > 0:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &cfg); err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %s is not a .dockercfg: %s", s.Namespace, s.Name, corev1.DockerConfigKey, jsonProblem(err))
		}
	}
	return cfg, nil
}

// jsonProblem says what is wrong with a JSON document without quoting it (a syntax error's
// message holds no content; a type error names the field).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q is a %s, want a %s", typ.Field, typ.Value, typ.Type.Kind())
	}
	return "invalid JSON"
}

// newKeyring makes a keyring of the secrets' registries, in the secrets' order.
func newKeyring(secrets []*corev1.Secret) (*keyring, error) {
	k := &keyring{creds: map[string][]Credential{}}
	for _, s := range secrets {
		cfg, err := dockerConfig(s)
		if err != nil {
			return nil, err
		}
		locs := make([]string, 0, len(cfg))
		for loc := range cfg {
			locs = append(locs, loc)
		}
		sort.Strings(locs)
		for _, loc := range locs {
			cred, err := cfg[loc].credential()
			if err != nil {
				return nil, fmt.Errorf("image pull secret %s/%s, registry %q: %w", s.Namespace, s.Name, loc, err)
			}
			cred.source = &secretSource{Namespace: s.Namespace, Name: s.Name, UID: s.UID}
			key, ok := locationKey(loc)
			if !ok {
				continue
			}
			if _, seen := k.creds[key]; !seen {
				k.index = append(k.index, key)
			}
			k.creds[key] = append(k.creds[key], cred)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
	return k, nil
}

// locationKey is a registry location as the keyring indexes it: the scheme dropped, and a
// /v1/ or /v2/ path meaning the host itself (as the Docker client reads config.json).
func locationKey(loc string) (string, bool) {
	if !strings.HasPrefix(loc, "https://") && !strings.HasPrefix(loc, "http://") {
		loc = "https://" + loc
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return "", false
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	if p == "" || p == "/" {
		return u.Host, true
	}
	return u.Host + p, true
}

// defaultDomain is the registry of an image named without one, and legacyDefaultDomain the
// name the Docker client files its credentials under; both from the reference library, as
// the kubelet's defaultRegistryKey.
var (
	defaultDomain       = reference.Domain(mustParseNamed("x"))
	legacyDefaultDomain = "index." + defaultDomain
)

func mustParseNamed(s string) reference.Named {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		panic(err)
	}
	return n
}

// repository is an image reference's repository in full (host and path, no tag or digest),
// which the keyring matches: busybox:1.36 is <default registry>/library/busybox.
func repository(image string) (string, error) {
	n, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	return n.Name(), nil
}

// lookup returns the credentials to try for a repository, in order.
func (k *keyring) lookup(repo string) []Credential {
	var out []Credential
	for _, key := range k.index {
		if locationMatches(key, repo) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) > 0 {
		return out
	}
	if host, _, _ := strings.Cut(repo, "/"); host == defaultDomain || host == legacyDefaultDomain {
		return append(out, k.creds[legacyDefaultDomain]...)
	}
	return nil
}

// locationMatches is the kubelet's URLsMatch: the same port, as many host labels with each
// matching its glob, and the location's path a prefix of the repository's.
func locationMatches(location, repo string) bool {
	lHost, lPath, _ := strings.Cut(location, "/")
	rHost, rPath, _ := strings.Cut(repo, "/")
	lName, lPort := splitPort(lHost)
	rName, rPort := splitPort(rHost)
	if lPort != rPort || !strings.HasPrefix("/"+rPath, "/"+lPath) {
		return false
	}
	lLabels, rLabels := strings.Split(lName, "."), strings.Split(rName, ".")
	if len(lLabels) != len(rLabels) {
		return false
	}
	for i, glob := range lLabels {
		if ok, err := filepath.Match(glob, rLabels[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitPort(host string) (name, port string) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i], host[i+1:]
	}
	return host, ""
}
