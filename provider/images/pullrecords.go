package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/satellite-vk/satellite/remote"
)

// pullRecords remember which credentials pulled each image on the host, so that an image a
// pod pulled with its image pull secret does not serve another pod that has no such secret,
// as the kubelet does with KubeletEnsureSecretPulledImages (on by default since 1.35,
// pkg/kubelet/images/pullmanager, policy NeverVerifyPreloadedImages):
//
//   - an image on the host that Satellite never pulled (preloaded, or pulled by someone else)
//     serves every pod;
//   - one Satellite pulled without credentials, or with a credential provider's (ECR, whose
//     credentials belong to the node), serves every pod;
//   - one pulled with a pull secret serves a pod with a pull secret of the same namespace, name
//     and UID, or of the same credential; any other pod must pull it again with its own
//     credentials, which fails without them.
//
// The records live in one 0600 file on the host beside the pods' directories, written whole
// (write to a temporary file, then rename), and are read once, at the first image check. A
// record is by image ID, then by repository (an image ID may be known under several names).
// Intents are images whose pull began and whose record is not written yet: after a crash in
// between, such an image is not taken for a preloaded one.
type pullRecords struct {
	store recordFile

	mu     sync.Mutex
	loaded bool
	doc    pullRecordsDoc
}

type pullRecordsDoc struct {
	Images  map[string]map[string]*repoCredentials `json:"images"`  // image ID -> repository -> who may use it
	Intents map[string]int                         `json:"intents"` // image as the pod names it -> pulls in flight
}

// repoCredentials are the credentials an image was pulled with, under one repository.
type repoCredentials struct {
	NodeAccessible bool           `json:"nodeAccessible,omitempty"`
	Secrets        []pulledSecret `json:"secrets,omitempty"`
}

// pulledSecret is a pull secret that pulled an image, by its coordinates and a hash of its
// credential (sha256, as the kubelet keeps it).
type pulledSecret struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
	Hash      string    `json:"hash"`
}

// secretSource names the pull secret a credential came from; nil for a credential that is the
// node's (a credential provider's).
type secretSource struct {
	Namespace, Name string
	UID             types.UID
}

func credentialHash(c Credential) string {
	h := sha256.Sum256([]byte(c.Username + ":" + c.Password))
	return hex.EncodeToString(h[:])
}

// recordFile is where the records are kept.
type recordFile interface {
	read(ctx context.Context) ([]byte, error) // empty when there is none yet
	write(ctx context.Context, b []byte) error
}

// Commands runs shell commands on the host: all the pull records need of it.
type Commands interface {
	// Output runs a command and returns its standard output.
	Output(ctx context.Context, cmd string) ([]byte, error)
	// Input runs a command with the given standard input.
	Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
}

// hostFile is a file on the host, written whole: to a temporary file, then renamed.
type hostFile struct {
	host Commands
	path string
}

func (f hostFile) read(ctx context.Context) ([]byte, error) {
	out, err := f.host.Output(ctx, fmt.Sprintf("cat %s 2>/dev/null || true", remote.Quote(f.path)))
	if err != nil {
		return nil, fmt.Errorf("read %s on the host: %w", f.path, err)
	}
	return out, nil
}

func (f hostFile) write(ctx context.Context, b []byte) error {
	q, tmp := remote.Quote(f.path), remote.Quote(f.path+".tmp")
	script := fmt.Sprintf("set -e; umask 077; mkdir -p \"$(dirname %s)\"; cat > %s; mv -f %s %s", q, tmp, tmp, q)
	if _, err := f.host.Input(ctx, script, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write %s on the host: %w", f.path, err)
	}
	return nil
}

func newPullRecords(store recordFile) *pullRecords {
	return &pullRecords{store: store}
}

// load reads the records once.
func (r *pullRecords) load(ctx context.Context) error {
	if r.loaded {
		return nil
	}
	out, err := r.store.read(ctx)
	if err != nil {
		return fmt.Errorf("image pull records: %w", err)
	}
	doc := pullRecordsDoc{}
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &doc); err != nil {
			return fmt.Errorf("image pull records: not valid JSON: %w", err)
		}
	}
	if doc.Images == nil {
		doc.Images = map[string]map[string]*repoCredentials{}
	}
	if doc.Intents == nil {
		doc.Intents = map[string]int{}
	}
	r.doc, r.loaded = doc, true
	return nil
}

// save writes the records. Called with r.mu held.
func (r *pullRecords) save(ctx context.Context) error {
	b, err := json.Marshal(r.doc)
	if err != nil {
		return err
	}
	if err := r.store.write(ctx, b); err != nil {
		return fmt.Errorf("image pull records: %w", err)
	}
	return nil
}

// mayUse reports whether a pod may run the image already on the host, as ID imageID, without
// pulling it again; creds gives the credentials of its pull secrets, asked for only when the
// records need them.
func (r *pullRecords) mayUse(ctx context.Context, image, repo, imageID string, creds func() []Credential) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		return false, err
	}
	byRepo, pulled := r.doc.Images[imageID]
	if !pulled {
		// Never pulled by Satellite, unless a pull of it was cut short.
		return r.doc.Intents[image] == 0, nil
	}
	rc := byRepo[repo]
	if rc == nil {
		return false, nil
	}
	if rc.NodeAccessible {
		return true, nil
	}
	for _, c := range creds() {
		if c.source == nil {
			continue
		}
		h := credentialHash(c)
		for _, s := range rc.Secrets {
			if s.Hash == h || (s.UID == c.source.UID && s.Namespace == c.source.Namespace && s.Name == c.source.Name) {
				return true, nil
			}
		}
	}
	return false, nil
}

// begin records the intent to pull image; done with its result.
func (r *pullRecords) begin(ctx context.Context, image string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		return err
	}
	r.doc.Intents[image]++
	return r.save(ctx)
}

// done records a pull of image (repo) that ended: when it succeeded, as image ID imageID with
// the credential used (nil: none).
func (r *pullRecords) done(ctx context.Context, image, repo, imageID string, used *Credential) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		return err
	}
	if r.doc.Intents[image]--; r.doc.Intents[image] <= 0 {
		delete(r.doc.Intents, image)
	}
	if imageID != "" {
		byRepo := r.doc.Images[imageID]
		if byRepo == nil {
			byRepo = map[string]*repoCredentials{}
			r.doc.Images[imageID] = byRepo
		}
		rc := byRepo[repo]
		if rc == nil {
			rc = &repoCredentials{}
			byRepo[repo] = rc
		}
		switch {
		case used == nil || used.source == nil:
			rc.NodeAccessible, rc.Secrets = true, nil
		case !rc.NodeAccessible:
			s := pulledSecret{Namespace: used.source.Namespace, Name: used.source.Name, UID: used.source.UID, Hash: credentialHash(*used)}
			if !slices.Contains(rc.Secrets, s) {
				rc.Secrets = append(rc.Secrets, s)
			}
		}
	}
	return r.save(ctx)
}
