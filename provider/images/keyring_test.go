package images

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func configJSONSecret(name, doc string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(doc)}}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// The kubelet's keyring cases (pkg/credentialprovider/keyring_test.go), on Satellite's.
func TestKeyringLookup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		auths  string
		image  string
		expect []string // user/password, in order
	}{
		{"host", `{"registry.example:5000":{"auth":"` + b64("u:p") + `"}}`, "registry.example:5000/team/app:v1", []string{"u/p"}},
		{"host with scheme and /v2/", `{"https://registry.example:5000/v2/":{"username":"u","password":"p"}}`, "registry.example:5000/app", []string{"u/p"}},
		{"other port", `{"registry.example:5000":{"username":"u","password":"p"}}`, "registry.example/app", nil},
		{"path prefix", `{"registry.example/team":{"username":"u","password":"p"}}`, "registry.example/team/app", []string{"u/p"}},
		{"path elsewhere", `{"registry.example/team":{"username":"u","password":"p"}}`, "registry.example/other/app", nil},
		{"glob label", `{"*.registry.example":{"username":"u","password":"p"}}`, "eu.registry.example/app", []string{"u/p"}},
		{"glob needs as many labels", `{"*.registry.example":{"username":"u","password":"p"}}`, "a.eu.registry.example/app", nil},
		{"most specific first", `{"registry.example":{"username":"host","password":"1"},"registry.example/team":{"username":"team","password":"2"}}`,
			"registry.example/team/app", []string{"team/2", "host/1"}},
		{"auth wins over username", `{"registry.example":{"username":"x","password":"y","auth":"` + b64("u:p:with:colons") + `"}}`,
			"registry.example/app", []string{"u/p:with:colons"}},
		{"default registry under its legacy name", `{"https://index.` + defaultDomain + `/v1/":{"username":"u","password":"p"}}`, "busybox:1.36", []string{"u/p"}},
		{"default registry named", `{"` + defaultDomain + `":{"username":"u","password":"p"}}`, "team/app", []string{"u/p"}},
		{"not the default registry", `{"https://index.` + defaultDomain + `/v1/":{"username":"u","password":"p"}}`, "registry.example/app", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := newKeyring([]*corev1.Secret{configJSONSecret("s", `{"auths":`+tt.auths+`}`)})
			if err != nil {
				t.Fatal(err)
			}
			repo, err := repository(tt.image)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range k.lookup(repo) {
				got = append(got, c.Username+"/"+c.Password)
			}
			if !reflect.DeepEqual(got, tt.expect) {
				t.Errorf("lookup(%s) = %v, want %v", repo, got, tt.expect)
			}
		})
	}
}

func TestKeyringSecrets(t *testing.T) {
	t.Parallel()
	dockercfg := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old"}, Type: corev1.SecretTypeDockercfg,
		Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"registry.example":{"auth":"` + b64("old:1") + `"}}`)}}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example":{"auth":"` + b64("no:0") + `"}}}`)}}
	k, err := newKeyring([]*corev1.Secret{configJSONSecret("new", `{"auths":{"registry.example":{"auth":"`+b64("new:2")+`"}}}`), dockercfg, opaque})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range k.lookup("registry.example/app") {
		got = append(got, c.Username+"/"+c.Password+" from "+c.source.Name)
	}
	if want := []string{"new/2 from new", "old/1 from old"}; !reflect.DeepEqual(got, want) {
		t.Errorf("lookup = %v, want %v: the secrets' credentials in their order, and none from an Opaque secret", got, want)
	}

	for name, doc := range map[string]string{
		`image pull secret ns/bad: .dockerconfigjson is not a Docker config.json: invalid JSON at byte 11`:                           `{"auths": {`,
		`image pull secret ns/bad: .dockerconfigjson is not a Docker config.json: field "auths" is a string, want a map`:             `{"auths": "hunter2"}`,
		`image pull secret ns/bad, registry "r.example": unable to parse auth field, must be formatted as base64(username:password)`: `{"auths": {"r.example": {"auth": "` + b64("hunter2") + `"}}}`,
	} {
		_, err := newKeyring([]*corev1.Secret{configJSONSecret("bad", doc)})
		if err == nil || !strings.HasPrefix(err.Error(), name) {
			t.Errorf("secret %s: err = %v, want %s", doc, err, name)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}
