package images

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

// registryRuntime is an image service behind a registry: it accepts pulls with the one
// credential it knows (nil: anonymous pulls work) and refuses others as a registry answers 401.
var events = fake.Events

func registryRuntime(want *Credential) *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.PullImage = func(_ context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
		if want != nil && (r.Auth == nil || r.Auth.Username != want.Username || r.Auth.Password != want.Password) {
			return nil, errors.New("401 Unauthorized")
		}
		return nil, fake.Pass
	}
	return cri
}

// pullAuths are the credentials of the pulls cri was asked for, in order.
func pullAuths(cri *fake.Runtime) []*runtimeapi.AuthConfig {
	var out []*runtimeapi.AuthConfig
	for _, r := range fake.Requests[runtimeapi.PullImageRequest](cri, "PullImage") {
		out = append(out, r.Auth)
	}
	return out
}

type fixedRegistries struct {
	creds []Credential
	err   error
	asked []string
}

func (f *fixedRegistries) Credentials(_ context.Context, repo string) ([]Credential, error) {
	f.asked = append(f.asked, repo)
	return f.creds, f.err
}

// secretMap serves the secrets it holds, by name (all of namespace ns).
type secretMap map[string]*corev1.Secret

func (m secretMap) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if s, ok := m[name]; ok && s.Namespace == namespace {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

func newSecretMap(secrets ...*corev1.Secret) secretMap {
	m := secretMap{}
	for _, s := range secrets {
		m[s.Name] = s
	}
	return m
}

// newTestManager is a Manager of the runtime and secrets, with its pull records in memory.
func newTestManager(cri Runtime, rec record.EventRecorder, secrets SecretGetter, registries CredentialProvider, records *memRecords) *Manager {
	m := New(Config{Runtime: cri, Secrets: secrets, Registries: registries, Recorder: rec})
	m.records = newPullRecords(records)
	return m
}

func TestEnsureImageCredentials(t *testing.T) {
	t.Parallel()
	right := `{"auths":{"registry.example:5000":{"auth":"` + b64("satellite:right") + `"}}}`
	wrong := `{"auths":{"registry.example:5000":{"auth":"` + b64("satellite:wrong") + `"}}}`
	elsewhere := `{"auths":{"other.example":{"auth":"` + b64("satellite:right") + `"}}}`
	for _, tt := range []struct {
		name       string
		secrets    []string // pull secrets by name, from the docs below
		registries *fixedRegistries
		want       *Credential
		ok         bool
		pulls      []string // user:password of each PullImage, "-" for none
		events     []string
	}{
		{name: "anonymous registry, no secrets", ok: true, pulls: []string{"-"}},
		{name: "the secret's credential", secrets: []string{"right"}, want: &Credential{Username: "satellite", Password: "right"}, ok: true, pulls: []string{"satellite:right"}},
		{name: "each credential in turn", secrets: []string{"wrong", "right"}, want: &Credential{Username: "satellite", Password: "right"}, ok: true,
			pulls: []string{"satellite:wrong", "satellite:right"}},
		{name: "a secret for another registry is not sent", secrets: []string{"elsewhere"}, want: &Credential{Username: "satellite", Password: "right"},
			pulls: []string{"-"}, events: []string{"Warning Failed Failed to pull image \"registry.example:5000/team/model:v1\": 401 Unauthorized"}},
		{name: "a missing secret", secrets: []string{"missing", "right"}, want: &Credential{Username: "satellite", Password: "right"}, ok: true,
			pulls:  []string{"satellite:right"},
			events: []string{"Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (missing); attempting to pull the image may not succeed."}},
		{name: "the provider's credential after the secrets'", secrets: []string{"wrong"}, registries: &fixedRegistries{creds: []Credential{{Username: "AWS", Password: "token"}}},
			want: &Credential{Username: "AWS", Password: "token"}, ok: true, pulls: []string{"satellite:wrong", "AWS:token"}},
		{name: "the provider's error shows when the pull fails", registries: &fixedRegistries{err: errors.New("no credentials for the registry: not authorized")},
			want: &Credential{Username: "AWS", Password: "token"}, pulls: []string{"-"},
			events: []string{"Warning Failed Failed to pull image \"registry.example:5000/team/model:v1\": 401 Unauthorized (no credentials for the registry: not authorized)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs := map[string]string{"right": right, "wrong": wrong, "elsewhere": elsewhere}
			var secrets []*corev1.Secret
			for name, doc := range docs {
				secrets = append(secrets, configJSONSecret(name, doc))
			}
			cri := registryRuntime(tt.want)
			rec := record.NewFakeRecorder(20)
			var registries CredentialProvider
			if tt.registries != nil {
				registries = tt.registries
			}
			m := newTestManager(cri, rec, newSecretMap(secrets...), registries, &memRecords{})
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u"}}
			for _, s := range tt.secrets {
				pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
			}
			c := &corev1.Container{Name: "main", Image: "registry.example:5000/team/model:v1", ImagePullPolicy: corev1.PullIfNotPresent}
			_, err := m.Ensure(context.Background(), pod, c, &runtimeapi.PodSandboxConfig{}, "")
			if (err == nil) != tt.ok {
				t.Errorf("ensureImage: %v, want ok %v", err, tt.ok)
			}
			var pulls []string
			for _, a := range pullAuths(cri) {
				if a == nil {
					pulls = append(pulls, "-")
				} else {
					pulls = append(pulls, a.Username+":"+a.Password)
					if a.ServerAddress != "" {
						t.Errorf("ServerAddress %q: the kubelet sends none, so that containerd also gives the credential to the registry's mirrors", a.ServerAddress)
					}
				}
			}
			if strings.Join(pulls, ",") != strings.Join(tt.pulls, ",") {
				t.Errorf("pulls %v, want %v", pulls, tt.pulls)
			}
			if tt.registries != nil && (len(tt.registries.asked) != 1 || tt.registries.asked[0] != "registry.example:5000/team/model") {
				t.Errorf("the provider was asked for %v, want the repository once", tt.registries.asked)
			}
			got := events(rec)
			for _, want := range tt.events {
				found := false
				for _, ev := range got {
					found = found || ev == want
				}
				if !found {
					t.Errorf("no event %q in %q", want, got)
				}
			}
			for _, ev := range got {
				if strings.Contains(ev, "right") || strings.Contains(ev, "token\"") {
					t.Errorf("an event names a credential: %s", ev)
				}
			}
		})
	}
}

// memRecords keeps the pull records in memory.
type memRecords struct {
	mu sync.Mutex
	b  []byte
}

func (m *memRecords) read(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b...), nil
}

func (m *memRecords) write(_ context.Context, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = append([]byte(nil), b...)
	return nil
}

// An image a pod pulled with its pull secret serves another pod only with that secret or its
// credential: without one, the second pod pulls again, and the registry refuses it.
func TestEnsureImagePulledWithSecret(t *testing.T) {
	t.Parallel()
	const image = "registry.example:5000/team/model:v1"
	doc := `{"auths":{"registry.example:5000":{"auth":"` + b64("satellite:right") + `"}}}`
	secret := configJSONSecret("pull", doc)
	secret.UID = "uid-1"
	other := configJSONSecret("copy", doc) // another secret, the same credential
	other.UID = "uid-2"
	cri := registryRuntime(&Credential{Username: "satellite", Password: "right"})
	records := &memRecords{}
	newManager := func() (*Manager, *record.FakeRecorder) {
		rec := record.NewFakeRecorder(20)
		return newTestManager(cri, rec, newSecretMap(secret, other), nil, records), rec
	}
	ensure := func(m *Manager, podName string, secrets ...string) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: podName, UID: types.UID(podName)}}
		for _, s := range secrets {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		c := &corev1.Container{Name: "main", Image: image, ImagePullPolicy: corev1.PullIfNotPresent}
		_, err := m.Ensure(context.Background(), pod, c, &runtimeapi.PodSandboxConfig{}, "")
		return err
	}
	m, rec := newManager()
	if err := ensure(m, "first", "pull"); err != nil {
		t.Fatal(err)
	}
	if err := ensure(m, "stranger"); err == nil {
		t.Error("a pod without a pull secret ran the image another pod pulled with one")
	}
	if got := events(rec); len(got) < 3 || !strings.HasPrefix(got[len(got)-1], "Warning Failed Failed to pull image") {
		t.Errorf("events %q: want the stranger's pull to fail", got)
	}
	pulls := len(pullAuths(cri))
	// A restarted Satellite reads the records from the host.
	m, rec = newManager()
	for _, tt := range []struct {
		pod     string
		secrets []string
	}{{"same-secret", []string{"pull"}}, {"same-credential", []string{"copy"}}} {
		if err := ensure(m, tt.pod, tt.secrets...); err != nil {
			t.Errorf("%s: %v", tt.pod, err)
		}
	}
	if len(pullAuths(cri)) != pulls {
		t.Errorf("%d pulls for pods that may use the image; want none", len(pullAuths(cri))-pulls)
	}
	for _, ev := range events(rec) {
		if ev != `Normal Pulled Container image "`+image+`" already present on machine and can be accessed by the pod` {
			t.Errorf("event %q", ev)
		}
	}
	if strings.Contains(string(records.b), "right") {
		t.Errorf("the records hold the password: %s", records.b)
	}
}

func TestPullRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secretA := Credential{Username: "u", Password: "a", source: &secretSource{Namespace: "ns", Name: "a", UID: "1"}}
	rotated := Credential{Username: "u", Password: "a2", source: &secretSource{Namespace: "ns", Name: "a", UID: "1"}}
	copyOfA := Credential{Username: "u", Password: "a", source: &secretSource{Namespace: "other", Name: "b", UID: "2"}}
	secretB := Credential{Username: "u", Password: "b", source: &secretSource{Namespace: "ns", Name: "b", UID: "3"}}
	provider := Credential{Username: "AWS", Password: "t"}
	r := newPullRecords(&memRecords{})
	may := func(image, repo, id string, creds ...Credential) bool {
		ok, err := r.mayUse(ctx, image, repo, id, func() []Credential { return creds })
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	pull := func(image, repo, id string, used *Credential) {
		if err := r.begin(ctx, image); err != nil {
			t.Fatal(err)
		}
		if err := r.done(ctx, image, repo, id, used); err != nil {
			t.Fatal(err)
		}
	}
	if !may("r/preloaded:1", "r/preloaded", "sha256:p") {
		t.Error("an image Satellite never pulled serves only some pods")
	}
	pull("r/private:1", "r/private", "sha256:x", &secretA)
	pull("r/public:1", "r/public", "sha256:y", nil)
	pull("r/ecr:1", "r/ecr", "sha256:z", &provider)
	for _, tt := range []struct {
		name     string
		image    string
		repo, id string
		creds    []Credential
		want     bool
	}{
		{"no secret", "r/private:1", "r/private", "sha256:x", nil, false},
		{"the secret", "r/private:1", "r/private", "sha256:x", []Credential{secretA}, true},
		{"the secret, rotated", "r/private:1", "r/private", "sha256:x", []Credential{rotated}, true},
		{"another secret, same credential", "r/private:1", "r/private", "sha256:x", []Credential{copyOfA}, true},
		{"another secret", "r/private:1", "r/private", "sha256:x", []Credential{secretB}, false},
		{"a provider's credential", "r/private:1", "r/private", "sha256:x", []Credential{provider}, false},
		{"the image under another name", "q/alias:1", "q/alias", "sha256:x", []Credential{secretA}, false},
		{"pulled without credentials", "r/public:1", "r/public", "sha256:y", nil, true},
		{"pulled with a provider's", "r/ecr:1", "r/ecr", "sha256:z", nil, true},
	} {
		if got := may(tt.image, tt.repo, tt.id, tt.creds...); got != tt.want {
			t.Errorf("%s: mayUse = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A pull cut short (Satellite gone before it recorded the result) leaves an intent: the
	// image, when there, is not taken for a preloaded one.
	if err := r.begin(ctx, "r/cut:1"); err != nil {
		t.Fatal(err)
	}
	if may("r/cut:1", "r/cut", "sha256:c") {
		t.Error("an image whose pull was cut short serves every pod")
	}
}

// A failed pull reads as the kubelet's: the runtime's message for the code Unknown, gRPC's form
// for another, and the distinct messages of several attempts in brackets.
func TestPullErrorWording(t *testing.T) {
	t.Parallel()
	unknown := &remote.RuntimeError{Method: "PullImage", Code: "Unknown", Message: "failed to pull and unpack image: 401 Unauthorized"}
	notFound := &remote.RuntimeError{Method: "PullImage", Code: "NotFound", Message: "failed to resolve reference: not found"}
	for _, tt := range []struct {
		err  pullError
		want string
	}{
		{pullError{unknown}, "failed to pull and unpack image: 401 Unauthorized"},
		{pullError{notFound}, "rpc error: code = NotFound desc = failed to resolve reference: not found"},
		{pullError{unknown, unknown}, "failed to pull and unpack image: 401 Unauthorized"},
		{pullError{unknown, notFound}, "[failed to pull and unpack image: 401 Unauthorized, rpc error: code = NotFound desc = failed to resolve reference: not found]"},
		{pullError{errors.New("ssh: host unavailable")}, "ssh: host unavailable"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	var re *remote.RuntimeError
	if !errors.As(pullError{unknown, notFound}, &re) || re != unknown {
		t.Error("a pull error does not wrap what the runtime said")
	}
}

func TestPulledEventAsTheKubelets(t *testing.T) {
	t.Parallel()
	rec := record.NewFakeRecorder(10)
	m := newTestManager(registryRuntime(nil), rec, secretMap{}, nil, &memRecords{})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u"}}
	c := &corev1.Container{Name: "main", Image: "registry.example/m:1", ImagePullPolicy: corev1.PullAlways}
	if _, err := m.Ensure(context.Background(), pod, c, &runtimeapi.PodSandboxConfig{}, ""); err != nil {
		t.Fatal(err)
	}
	got := events(rec)
	want := regexp.MustCompile(`^Normal Pulled Successfully pulled image "registry.example/m:1" in (\d+(\.\d+)?(ms|µs|s)) \(\d+(\.\d+)?(ms|µs|s) including waiting\)\. Image size: 1048576 bytes\.$`)
	if len(got) != 2 || got[0] != `Normal Pulling Pulling image "registry.example/m:1"` || !want.MatchString(got[1]) {
		t.Errorf("events %q: want Pulling, then Pulled as the kubelet words it", got)
	}
}
