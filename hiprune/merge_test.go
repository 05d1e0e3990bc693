package hiprune_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

// refMerge walks the patches in raster order and adds each to the token it
// falls in: an independent formulation of MergeScores.
func refMerge(scores []float32, w, h, k int) []float32 {
	tw := w / k
	sum := make([]float64, tw*(h/k))
	for p, v := range scores {
		x, y := p%w, p/w
		sum[(y/k)*tw+x/k] += float64(v)
	}
	out := make([]float32, len(sum))
	for i, s := range sum {
		out[i] = float32(s / float64(k*k))
	}
	return out
}

func TestMergeScores(t *testing.T) {
	// 4 x 2 patches, 2 x 2 groups:
	//   1 2 | 3 4
	//   5 6 | 7 8
	got, err := hiprune.MergeScores(nil, []float32{1, 2, 3, 4, 5, 6, 7, 8}, 4, 2, 2)
	require.NoError(t, err)
	assert.Equal(t, []float32{3.5, 5.5}, got)

	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		k := 1 + rng.IntN(3)
		w, h := k*(1+rng.IntN(12)), k*(1+rng.IntN(12))
		s := make([]float32, w*h)
		for i := range s {
			s[i] = rng.Float32()
		}
		buf := make([]float32, 0, 1000)
		got, err := hiprune.MergeScores(buf, s, w, h, k)
		require.NoError(t, err)
		assert.Equal(t, refMerge(s, w, h, k), got, "%dx%d k=%d", w, h, k)
		if len(got) <= cap(buf) {
			assert.Same(t, &buf[:1][0], &got[0], "dst's storage is reused")
		}
	}
	same, err := hiprune.MergeScores(nil, []float32{4, 5, 6}, 3, 1, 1)
	require.NoError(t, err)
	assert.Equal(t, []float32{4, 5, 6}, same, "k = 1 is the identity")
}

func TestMergeScoresErrors(t *testing.T) {
	for _, tc := range []struct {
		s       []float32
		w, h, k int
		err     error
	}{
		{make([]float32, 6), 3, 2, 2, hiprune.ErrShape},
		{make([]float32, 8), 4, 2, 0, hiprune.ErrShape},
		{make([]float32, 7), 4, 2, 2, hiprune.ErrShape},
		{make([]float32, 0), 0, 2, 2, hiprune.ErrShape},
		{[]float32{0, 1, float32(math.NaN()), 3}, 2, 2, 2, hiprune.ErrScore},
		{[]float32{0, 1, float32(math.Inf(-1)), 3}, 2, 2, 2, hiprune.ErrScore},
	} {
		_, err := hiprune.MergeScores(nil, tc.s, tc.w, tc.h, tc.k)
		assert.ErrorIs(t, err, tc.err, "%dx%d k=%d", tc.w, tc.h, tc.k)
	}
}

func TestRetainBudget(t *testing.T) {
	for _, tc := range []struct {
		n     int
		ratio float64
		want  int
	}{
		{400, 0.334, 134}, // 133.6
		{400, 0.223, 89},  // 89.2
		{400, 0.112, 45},  // 44.8
		{10, 0.25, 2},     // 2.5: half to even, as Python's round
		{14, 0.25, 4},     // 3.5
		{3, 0.1, 1},       // 0.3 rounds to 0: at least one token
		{77, 1, 77},
	} {
		got, err := hiprune.RetainBudget(tc.n, tc.ratio)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%d x %v", tc.n, tc.ratio)
	}
	for _, r := range []float64{0, -0.5, 1.01, math.NaN(), math.Inf(1)} {
		_, err := hiprune.RetainBudget(10, r)
		assert.ErrorIs(t, err, hiprune.ErrBudget, "%v", r)
	}
	_, err := hiprune.RetainBudget(0, 0.5)
	assert.ErrorIs(t, err, hiprune.ErrShape)
	assert.Equal(t, []float64{0.334, 0.223, 0.112}, hiprune.QwenRetentions())
}

// The Qwen path end to end on non-square merged grids: per-patch scores
// merged 2x2, the budget from the retention ratio, and the selection
// against the naive reference of the contract.
func TestSelectOnMergedGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 300 {
		pw, ph := 2*(1+rng.IntN(40)), 2*(1+rng.IntN(40))
		if iter == 0 {
			pw, ph = 22, 14 // a 308x196 image: 11 x 7 tokens
		}
		obj := make([]float32, pw*ph)
		deep := make([]float32, pw*ph)
		for i := range obj {
			obj[i] = float32(rng.IntN(20)) // ties
			deep[i] = rng.Float32()
		}
		mo, err := hiprune.MergeScores(nil, obj, pw, ph, 2)
		require.NoError(t, err)
		md, err := hiprune.MergeScores(nil, deep, pw, ph, 2)
		require.NoError(t, err)
		w, h := pw/2, ph/2
		ratio := hiprune.QwenRetentions()[iter%3]
		budget, err := hiprune.RetainBudget(w*h, ratio)
		require.NoError(t, err)
		cfg := hiprune.Config{Budget: budget, Alpha: hiprune.DefaultAlpha}
		got, err := hiprune.Select(mo, md, w, h, cfg)
		require.NoError(t, err)
		want, _ := refSelect(mo, md, w, h, cfg)
		require.Equal(t, want, got, "%dx%d tokens, budget %d", w, h, budget)
		require.Len(t, got, min(budget, w*h))
	}
}
