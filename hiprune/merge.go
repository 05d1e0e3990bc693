package hiprune

import (
	"fmt"
	"math"
)

// Qwen2.5-VL defaults from the authors' code (mmdbhs/HiPrune-fork,
// Qwen2_5_VL/qwen2_5_vl_HiPrune.py and its evaluation settings).
const (
	// DefaultObjectLayerQwen is the object layer (1-based block) for
	// Qwen2.5-VL's vision tower.
	DefaultObjectLayerQwen = 16
	// DefaultRetentionQwen is the share of image tokens kept by default.
	DefaultRetentionQwen = 0.334
)

// QwenRetentions returns the retention ratios evaluated by the authors on
// Qwen2.5-VL, largest first.
func QwenRetentions() []float64 { return []float64{0.334, 0.223, 0.112} }

// RetainBudget turns a retention ratio into the budget N' for n tokens as
// the authors' Qwen code does: round(n * ratio), Python's round (half to
// even), and at least one token. ratio must be in (0, 1].
func RetainBudget(n int, ratio float64) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: %d tokens, want >= 1", ErrShape, n)
	}
	if !(ratio > 0 && ratio <= 1) {
		return 0, fmt.Errorf("%w: retention ratio %v must be in (0, 1]", ErrBudget, ratio)
	}
	return max(1, int(math.RoundToEven(float64(n)*ratio))), nil
}

// MergeScores turns per-patch scores on a w x h row-major patch grid into
// per-token scores for a vision tower that merges k x k patches into one
// token (Qwen2.5-VL: k = 2): token (x, y) of the (w/k) x (h/k) grid gets
// the mean of patches (k*x+dx, k*y+dy). This is how the authors' Qwen code
// reduces the attention of the 2x2 patch groups before selecting on the
// merged grid (it then applies a softmax over the tokens, which keeps
// their order and so is left out).
//
// The result reuses dst's storage when it is large enough. w and h must be
// multiples of k; a NaN or infinite score is an error (ErrScore).
func MergeScores(dst, scores []float32, w, h, k int) ([]float32, error) {
	if k < 1 || w < 1 || h < 1 || w%k != 0 || h%k != 0 {
		return nil, fmt.Errorf("%w: %d x %d patches cannot be merged %d x %d", ErrShape, w, h, k, k)
	}
	if w > math.MaxInt/h || len(scores) != w*h {
		return nil, fmt.Errorf("%w: %d scores for %d x %d patches", ErrShape, len(scores), w, h)
	}
	if err := checkFinite("patch", scores); err != nil {
		return nil, err
	}
	tw, th := w/k, h/k
	n := tw * th
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	inv := 1 / float64(k*k)
	for ty := range th {
		for tx := range tw {
			var sum float64
			for dy := range k {
				row := scores[(ty*k+dy)*w+tx*k:]
				for dx := range k {
					sum += float64(row[dx])
				}
			}
			dst[ty*tw+tx] = float32(sum * inv)
		}
	}
	return dst, nil
}
