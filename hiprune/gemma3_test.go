package hiprune_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

// Gemma 3: 64x64 patch scores pooled 4x4 into the 16x16 token grid, and
// the budgets of a third (85), 64 and 32 selected on it.
func TestGemma3PooledSelection(t *testing.T) {
	n, err := hiprune.RetainBudget(256, hiprune.DefaultRetentionGemma3)
	require.NoError(t, err)
	assert.Equal(t, 85, n)
	assert.Equal(t, []int{85, 64, 32}, hiprune.Gemma3Budgets())
	assert.Equal(t, n, hiprune.Gemma3Budgets()[0])

	rng := rand.New(rand.NewPCG(11, 12))
	patch := func() []float32 {
		s := make([]float32, 64*64)
		for i := range s {
			s[i] = rng.Float32()
		}
		return s
	}
	po, pd := patch(), patch()
	obj, err := hiprune.MergeScores(nil, po, 64, 64, hiprune.Gemma3Merge)
	require.NoError(t, err)
	deep, err := hiprune.MergeScores(nil, pd, 64, 64, hiprune.Gemma3Merge)
	require.NoError(t, err)
	assert.Equal(t, refMerge(po, 64, 64, 4), obj)
	assert.Equal(t, refMerge(pd, 64, 64, 4), deep)
	for _, budget := range hiprune.Gemma3Budgets() {
		keep, err := hiprune.Select(obj, deep, 16, 16, hiprune.Config{Budget: budget, Alpha: hiprune.DefaultAlpha})
		require.NoError(t, err)
		require.Len(t, keep, budget)
		assert.True(t, slices.IsSorted(keep))
		// The best object-layer token is an anchor, kept at any budget.
		best := 0
		for i, v := range obj {
			if v > obj[best] {
				best = i
			}
		}
		assert.Contains(t, keep, best)
	}
}
