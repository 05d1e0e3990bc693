package hiprune

import (
	"fmt"
	"math"
)

// Scores turns attention probabilities into the per-patch score vector used
// by Select: the attention every token receives, averaged over heads and over
// all query rows (a CLS query row included).
//
// attn is heads x queries x keys, row-major ([h][i][j] at
// (h*nTokens+i)*nTokens+j), with queries == keys == nTokens. cls is the index
// of a CLS token whose column is dropped from the result (0 normally,
// nTokens-1 for a CLS-last layout), or -1 when there is none. The result has
// nTokens-1 entries with a CLS token and nTokens without.
//
// Sums are accumulated in float64. A NaN or infinite attention value is an
// error (ErrScore).
func Scores(attn []float32, nHeads, nTokens int, cls int) ([]float32, error) {
	if nHeads < 1 {
		return nil, fmt.Errorf("%w: heads %d must be >= 1", ErrShape, nHeads)
	}
	if nTokens < 1 {
		return nil, fmt.Errorf("%w: tokens %d must be >= 1", ErrShape, nTokens)
	}
	if cls < -1 || cls >= nTokens {
		return nil, fmt.Errorf("%w: cls index %d out of range [-1, %d)", ErrShape, cls, nTokens)
	}
	if cls >= 0 && nTokens == 1 {
		return nil, fmt.Errorf("%w: 1 token with cls index %d leaves no patch tokens", ErrShape, cls)
	}
	if nTokens > math.MaxInt/nTokens || nHeads > math.MaxInt/(nTokens*nTokens) {
		return nil, fmt.Errorf("%w: heads %d x tokens %d x tokens %d is too large", ErrShape, nHeads, nTokens, nTokens)
	}
	if want := nHeads * nTokens * nTokens; len(attn) != want {
		return nil, fmt.Errorf("%w: attention has length %d, heads %d x tokens %d x tokens %d needs %d",
			ErrShape, len(attn), nHeads, nTokens, nTokens, want)
	}

	acc := make([]float64, nTokens)
	rows := nHeads * nTokens
	for r := range rows {
		row := attn[r*nTokens : (r+1)*nTokens]
		acc := acc[:len(row)]
		for j, v := range row {
			acc[j] += float64(v)
		}
	}

	// Float32 values summed in float64 cannot overflow here, so a
	// non-finite column sum means a non-finite input value.
	for j, a := range acc {
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, badAttention(attn, nTokens, j)
		}
	}

	out := make([]float32, 0, nTokens)
	inv := 1 / float64(rows)
	for j, a := range acc {
		if j != cls {
			out = append(out, float32(a*inv))
		}
	}
	return out, nil
}

// badAttention reports the first non-finite value in column j.
func badAttention(attn []float32, nTokens, j int) error {
	for p := j; p < len(attn); p += nTokens {
		if v := attn[p]; v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
			r := p / nTokens
			return fmt.Errorf("%w: attention at head %d, query %d, key %d is %v",
				ErrScore, r/nTokens, r%nTokens, j, v)
		}
	}
	return fmt.Errorf("%w: attention column %d does not sum to a finite value", ErrScore, j)
}
