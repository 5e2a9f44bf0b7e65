package doctor

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// checkSandboxImage checks that the pause image every pod sandbox starts from is on the host,
// or at least that its registry answers. containerd 1.x reports it in its CRI config
// (sandbox_image); containerd 2.x pins it (pinned_images.sandbox), so it is the pinned image.
func checkSandboxImage(ctx context.Context, rt Runtime, h Commander, cfg criConfig) Result {
	r := Result{Name: nameSandbox}
	image := cfg.SandboxImage
	if image == "" {
		list, err := rt.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err != nil {
			return fail(r, fmt.Sprintf("CRI ListImages: %v", err), "")
		}
		for _, img := range list.GetImages() {
			if img.GetPinned() && len(img.GetRepoTags()) > 0 {
				return pass(r, img.GetRepoTags()[0]+" present (pinned)")
			}
		}
		return warn(r, "containerd names no sandbox image and has none pinned: the first pod pulls containerd's default pause image",
			"name and pin one in containerd's config, and pull or import it ahead:\n"+
				"  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n    sandbox = \"registry.k8s.io/pause:3.10.1\"\n"+
				"  sudo ctr -n k8s.io images pull registry.k8s.io/pause:3.10.1")
	}
	st, err := rt.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		return fail(r, fmt.Sprintf("CRI ImageStatus %s: %v", image, err), "")
	}
	if st.GetImage() != nil {
		return pass(r, image+" present")
	}
	reg := registryHost(image)
	pull := "pull it ahead: sudo ctr -n k8s.io images pull " + image
	if reg == "localhost" {
		return fail(r, image+" is not on the host, and localhost/ images cannot be pulled: no pod can start",
			"import it: sudo ctr -n k8s.io images import <archive of "+image+">")
	}
	switch registryReachable(ctx, h, reg) {
	case reachNo:
		return fail(r, fmt.Sprintf("%s is not on the host, and %s does not answer from the host: no pod can start", image, reg),
			"let the host reach "+reg+" over HTTPS, or import the image: sudo ctr -n k8s.io images import <archive of "+image+">")
	case reachYes:
		return warn(r, fmt.Sprintf("%s is not on the host yet; %s answers, the first pod pulls it", image, reg), pull)
	}
	return warn(r, image+" is not on the host yet: the first pod pulls it", pull)
}

// registryHost is the registry an image reference pulls from, as containerd resolves it.
func registryHost(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "registry-1.docker.io"
	}
	if first == "docker.io" {
		return "registry-1.docker.io"
	}
	return first
}

type reach int

const (
	reachUnknown reach = iota
	reachYes
	reachNo
)

// registryReachable asks the host's curl whether the registry's API answers at all (any HTTP
// status, 401 included, is an answer). Without curl it cannot tell.
func registryReachable(ctx context.Context, h Commander, reg string) reach {
	out, err := h.Output(ctx, `command -v curl >/dev/null 2>&1 || { echo nocurl; exit 0; }
curl -sS -m 5 -o /dev/null -w '%{http_code}' https://`+remote.Quote(reg)+`/v2/`)
	switch {
	case err != nil:
		return reachNo
	case strings.TrimSpace(string(out)) == "nocurl":
		return reachUnknown
	}
	return reachYes
}
