package bridge

import (
	"fmt"
	"math"

	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Merge types of clip.vision.mm_patch_merge_type: how LLaVA-NeXT lays the
// views' features out for the language model (LLaVA's llava_arch.py,
// prepare_inputs_labels_for_multimodal).
const (
	// MergeFlat concatenates the views' tokens, base view first (also what
	// a file without the key means).
	MergeFlat = "flat"
	// MergeSpatial puts the tiles' tokens back in the refined image's raster
	// order, after the base view's.
	MergeSpatial = "spatial"
	// MergeSpatialUnpad is MergeSpatial with the padding rows or columns
	// cropped away and model.image_newline after every row: LLaVA-1.6.
	MergeSpatialUnpad = "spatial_unpad"
)

// The any-resolution part of an mmproj is read here, in Go, rather than in
// the C shim: the encoder graph runs each view like a LLaVA-1.5 image, and
// the cutting (llava/imageprep) and the token layout (llava) are Go's.
const newlineTensor = "model.image_newline"

// anyRes is what a LLaVA-NeXT mmproj adds to a LLaVA-1.5 one.
type anyRes struct {
	pinpoints []imageprep.Size
	merge     string
	newline   []float32 // nil when the file has none
}

// readAnyRes reads clip.vision.image_grid_pinpoints, mm_patch_merge_type
// and model.image_newline, checking them against the encoder's view size
// and projection width. A LLaVA-1.5 file gives an empty anyRes.
func readAnyRes(path string, imageSize, projDim int) (anyRes, error) {
	a := anyRes{merge: MergeFlat}
	f, err := gguf.Open(path)
	if err != nil {
		return a, classErr{ErrFormat, fmt.Errorf("%s: %w", path, err)}
	}
	defer f.Close()
	bad := func(kind error, format string, args ...any) error {
		return classErr{kind, fmt.Errorf("%s: "+format, append([]any{path}, args...)...)}
	}
	const pinKey = "clip.vision.image_grid_pinpoints"
	if kv, ok := f.Get(pinKey); ok {
		var vals []int64
		switch v := kv.Value.(type) {
		case []int32:
			for _, x := range v {
				vals = append(vals, int64(x))
			}
		case []uint32:
			for _, x := range v {
				vals = append(vals, int64(x))
			}
		default:
			return a, bad(ErrFormat, "%s is not an array of int32", pinKey)
		}
		// The most any LLaVA uses is 36 candidates (OneVision's 6 x 6).
		if len(vals) == 0 || len(vals)%2 != 0 || len(vals) > 2*1024 {
			return a, bad(ErrFormat, "%s has %d values, want (width, height) pairs", pinKey, len(vals))
		}
		for i := 0; i < len(vals); i += 2 {
			w, h := vals[i], vals[i+1]
			if w < 1 || h < 1 || w > 1<<14 || h > 1<<14 {
				return a, bad(ErrFormat, "%s pair %d is %dx%d, want sides in 1..%d", pinKey, i/2, w, h, 1<<14)
			}
			if w%int64(imageSize) != 0 || h%int64(imageSize) != 0 {
				return a, bad(ErrUnsup, "%s pair %d is %dx%d, not a multiple of clip.vision.image_size %d: llama.cpp "+
					"cuts narrower tiles there, which the encoder does not take", pinKey, i/2, w, h, imageSize)
			}
			a.pinpoints = append(a.pinpoints, imageprep.Size{W: int(w), H: int(h)})
		}
	}
	const mergeKey = "clip.vision.mm_patch_merge_type"
	if kv, ok := f.Get(mergeKey); ok {
		s, isStr := kv.Value.(string)
		switch {
		case !isStr:
			return a, bad(ErrFormat, "%s is not a string", mergeKey)
		case s == MergeFlat, s == MergeSpatial, s == MergeSpatialUnpad:
			a.merge = s
		default:
			return a, bad(ErrUnsup, "%s = %q is not supported (flat, spatial, spatial_unpad)", mergeKey, s)
		}
	}
	if t, ok := f.Tensor(newlineTensor); ok {
		if len(t.Ne) != 1 || t.Ne[0] != int64(projDim) || (t.Type != gguf.TypeF32 && t.Type != gguf.TypeF16) {
			return a, bad(ErrFormat, "tensor %s is %v %v, want f32 or f16 [%d] (the projection width)", newlineTensor, t.Type, t.Ne, projDim)
		}
		nl, err := f.ReadTensorFloat32(newlineTensor)
		if err != nil {
			return a, bad(ErrFormat, "%v", err)
		}
		for i, v := range nl {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return a, bad(ErrFormat, "tensor %s[%d] = %v is not finite", newlineTensor, i, v)
			}
		}
		a.newline = nl
	}
	return a, nil
}
