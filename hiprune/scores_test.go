package hiprune_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

// attn2x3 is 2 heads x 3 queries x 3 keys. Column sums over both heads and
// all rows: key 0: 0.5+0.2+0.1 + 0.4+0.3+0.0 = 1.5, key 1: 0.25+0.6+0.1 +
// 0.4+0.3+0.5 = 2.15, key 2: 0.25+0.2+0.8 + 0.2+0.4+0.5 = 2.35. Divided by
// 2 heads x 3 queries = 6: 0.25, 0.358333..., 0.391666...
var attn2x3 = []float32{
	0.5, 0.25, 0.25,
	0.2, 0.6, 0.2,
	0.1, 0.1, 0.8,

	0.4, 0.4, 0.2,
	0.3, 0.3, 0.4,
	0.0, 0.5, 0.5,
}

const (
	key0 = 1.5 / 6
	key1 = 2.15 / 6
	key2 = 2.35 / 6
)

func TestScoresHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name string
		cls  int
		want []float64
	}{
		{"no cls", -1, []float64{key0, key1, key2}},
		{"cls first", 0, []float64{key1, key2}},
		{"cls last", 2, []float64{key0, key1}},
		{"cls middle", 1, []float64{key0, key2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hiprune.Scores(attn2x3, 2, 3, tc.cls)
			require.NoError(t, err)
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				assert.InDelta(t, w, float64(got[i]), 1e-7, "score %d", i)
			}
		})
	}
}

func TestScoresSingleHeadNoCLS(t *testing.T) {
	// 1 head, 2 tokens: rows [0.9 0.1] and [0.3 0.7] -> (1.2/2, 0.8/2).
	got, err := hiprune.Scores([]float32{0.9, 0.1, 0.3, 0.7}, 1, 2, -1)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0.6, 0.4}, []float64{float64(got[0]), float64(got[1])}, 1e-7)

	// A single token without CLS: its score is its own attention.
	got, err = hiprune.Scores([]float32{1}, 1, 1, -1)
	require.NoError(t, err)
	assert.Equal(t, []float32{1}, got)
}

// Uniform attention over 577 tokens and 16 heads sums 9232 values per
// column; a float32 running sum would drift by around 1e-4 relative, the
// float64 sum is exact to float32 precision.
func TestScoresPrecision(t *testing.T) {
	const heads, tokens = 16, 577
	attn := make([]float32, heads*tokens*tokens)
	for i := range attn {
		attn[i] = 1.0 / tokens
	}
	got, err := hiprune.Scores(attn, heads, tokens, 0)
	require.NoError(t, err)
	require.Len(t, got, tokens-1)
	want := float32(1.0 / tokens)
	for j, v := range got {
		if math.Abs(float64(v-want)) > 1e-6*float64(want) {
			t.Fatalf("score %d = %v, want %v", j, v, want)
		}
	}
}

func TestScoresErrors(t *testing.T) {
	withNaN := append([]float32(nil), attn2x3...)
	withNaN[9+3+2] = float32(math.NaN()) // head 1, query 1, key 2
	withInf := append([]float32(nil), attn2x3...)
	withInf[1] = float32(math.Inf(-1)) // head 0, query 0, key 1
	for _, tc := range []struct {
		name               string
		attn               []float32
		heads, tokens, cls int
		sentinel           error
		msg                string
	}{
		{"short", attn2x3[:17], 2, 3, 0, hiprune.ErrShape, "attention has length 17, heads 2 x tokens 3 x tokens 3 needs 18"},
		{"long", append(append([]float32(nil), attn2x3...), 0), 2, 3, 0, hiprune.ErrShape, "length 19"},
		{"wrong heads", attn2x3, 3, 3, 0, hiprune.ErrShape, "needs 27"},
		{"heads 0", attn2x3, 0, 3, 0, hiprune.ErrShape, "heads 0 must be >= 1"},
		{"tokens 0", nil, 1, 0, -1, hiprune.ErrShape, "tokens 0 must be >= 1"},
		{"cls too large", attn2x3, 2, 3, 3, hiprune.ErrShape, "cls index 3 out of range [-1, 3)"},
		{"cls below -1", attn2x3, 2, 3, -2, hiprune.ErrShape, "cls index -2 out of range"},
		{"only cls", []float32{1}, 1, 1, 0, hiprune.ErrShape, "no patch tokens"},
		{"too large", nil, math.MaxInt / 2, 1 << 20, 0, hiprune.ErrShape, "too large"},
		{"NaN", withNaN, 2, 3, 0, hiprune.ErrScore, "attention at head 1, query 1, key 2 is NaN"},
		{"-Inf", withInf, 2, 3, -1, hiprune.ErrScore, "attention at head 0, query 0, key 1 is -Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hiprune.Scores(tc.attn, tc.heads, tc.tokens, tc.cls)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, tc.sentinel)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

// Scores feeds Select: a patch that draws attention at the object layer
// becomes the anchor.
func TestScoresIntoSelect(t *testing.T) {
	// 1 head, CLS + 4 patches (2x2 grid). Every query puts 0.6 on patch 2
	// (token 3) and 0.1 elsewhere.
	const tokens = 5
	attn := make([]float32, tokens*tokens)
	for i := range tokens {
		for j := range tokens {
			attn[i*tokens+j] = 0.1
		}
		attn[i*tokens+3] = 0.6
	}
	object, err := hiprune.Scores(attn, 1, tokens, 0)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0.1, 0.1, 0.6, 0.1}, toF64(object), 1e-7)
	// Budget 3, alpha 1: one anchor (patch 2 at x=0, y=1) with buffers up (0)
	// and right (3).
	sel, err := hiprune.SelectDetailed(object, []float32{0, 0, 0, 0}, 2, 2, hiprune.Config{Budget: 3, Alpha: 1})
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2, 3}, sel.Indices)
	assert.Equal(t, []int{2}, sel.Anchors)
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
