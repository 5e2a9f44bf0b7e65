package fake

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/sets"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// AddImage puts an image in the runtime, as if pulled before the test, and returns its id.
// References are matched exactly: the fake does not normalise them.
func (r *Runtime) AddImage(ref string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addImage(ref)
}

func (r *Runtime) addImage(ref string) string {
	if img := r.image(ref); img != nil {
		return img.Id
	}
	id := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(ref)))
	img := &runtimeapi.Image{Id: id, Size: 1 << 20}
	if strings.Contains(ref, "@") {
		img.RepoDigests = []string{ref}
	} else {
		img.RepoTags = []string{ref}
	}
	r.images[id] = img
	return id
}

// image finds an image by id, tag or digest.
func (r *Runtime) image(ref string) *runtimeapi.Image {
	if img := r.images[ref]; img != nil {
		return img
	}
	for _, img := range r.images {
		if slices.Contains(img.RepoTags, ref) || slices.Contains(img.RepoDigests, ref) {
			return img
		}
	}
	return nil
}

// PullImage adds the image; Hooks.PullImage can refuse it or check the credentials.
func (r *Runtime) PullImage(ctx context.Context, in *runtimeapi.PullImageRequest, _ ...grpc.CallOption) (*runtimeapi.PullImageResponse, error) {
	return do(ctx, r, "PullImage", in.GetImage().GetImage(), in, r.Hooks.PullImage, func(in *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
		return &runtimeapi.PullImageResponse{ImageRef: r.addImage(in.GetImage().GetImage())}, nil
	})
}

// ImageStatus describes an image; one the runtime lacks has no Image, and no error (CRI).
func (r *Runtime) ImageStatus(ctx context.Context, in *runtimeapi.ImageStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error) {
	return do(ctx, r, "ImageStatus", in.GetImage().GetImage(), in, r.Hooks.ImageStatus, func(in *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
		img := r.image(in.GetImage().GetImage())
		if img == nil {
			return &runtimeapi.ImageStatusResponse{}, nil
		}
		return &runtimeapi.ImageStatusResponse{Image: clone(img)}, nil
	})
}

// ListImages lists the images, or the one the filter names.
func (r *Runtime) ListImages(ctx context.Context, in *runtimeapi.ListImagesRequest, _ ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error) {
	return do(ctx, r, "ListImages", in.GetFilter().GetImage().GetImage(), in, r.Hooks.ListImages, func(in *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
		want := in.GetFilter().GetImage().GetImage()
		var out []*runtimeapi.Image
		for _, id := range sets.List(sets.KeySet(r.images)) {
			if want == "" || r.image(want) == r.images[id] {
				out = append(out, clone(r.images[id]))
			}
		}
		return &runtimeapi.ListImagesResponse{Images: out}, nil
	})
}

// RemoveImage removes an image; one that is gone is no error (CRI).
func (r *Runtime) RemoveImage(ctx context.Context, in *runtimeapi.RemoveImageRequest, _ ...grpc.CallOption) (*runtimeapi.RemoveImageResponse, error) {
	return do(ctx, r, "RemoveImage", in.GetImage().GetImage(), in, r.Hooks.RemoveImage, func(in *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
		if img := r.image(in.GetImage().GetImage()); img != nil {
			delete(r.images, img.Id)
		}
		return &runtimeapi.RemoveImageResponse{}, nil
	})
}

// ImageFsInfo answers no filesystems.
func (r *Runtime) ImageFsInfo(ctx context.Context, in *runtimeapi.ImageFsInfoRequest, _ ...grpc.CallOption) (*runtimeapi.ImageFsInfoResponse, error) {
	return do(ctx, r, "ImageFsInfo", "", in, r.Hooks.ImageFsInfo, func(*runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
		return &runtimeapi.ImageFsInfoResponse{}, nil
	})
}
