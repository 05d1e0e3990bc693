package hiprune_test

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

func assertSortedUnique(t *testing.T, got []int, n, count int) {
	t.Helper()
	require.Len(t, got, count)
	for i, v := range got {
		require.GreaterOrEqual(t, v, 0)
		require.Less(t, v, n)
		if i > 0 {
			require.Greater(t, v, got[i-1], "ascending and unique at %d", i)
		}
	}
}

func TestUniform(t *testing.T) {
	got, err := hiprune.Uniform(10, 4) // 0, 10/4=2, 20/4=5, 30/4=7
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2, 5, 7}, got)

	got, err = hiprune.Uniform(576, 64) // every 9th token
	require.NoError(t, err)
	assertSortedUnique(t, got, 576, 64)
	for i, v := range got {
		assert.Equal(t, 9*i, v)
	}

	got, err = hiprune.Uniform(576, 192) // every 3rd token
	require.NoError(t, err)
	assertSortedUnique(t, got, 576, 192)
	assert.Equal(t, 573, got[191])

	got, err = hiprune.Uniform(7, 6) // 0, 7/6, 14/6, 21/6, 28/6, 35/6
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5}, got)

	got, err = hiprune.Uniform(100, 1)
	require.NoError(t, err)
	assert.Equal(t, []int{0}, got)

	for _, budget := range []int{5, 6, 1000} {
		got, err = hiprune.Uniform(5, budget)
		require.NoError(t, err)
		assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	}

	// Deterministic.
	a, _ := hiprune.Uniform(2880, 640)
	b, _ := hiprune.Uniform(2880, 640)
	assert.Equal(t, a, b)
	assertSortedUnique(t, a, 2880, 640)
}

func TestRandom(t *testing.T) {
	a, err := hiprune.Random(576, 64, 42)
	require.NoError(t, err)
	assertSortedUnique(t, a, 576, 64)

	b, err := hiprune.Random(576, 64, 42)
	require.NoError(t, err)
	assert.Equal(t, a, b, "same seed, same selection")

	c, err := hiprune.Random(576, 64, 43)
	require.NoError(t, err)
	assertSortedUnique(t, c, 576, 64)
	assert.NotEqual(t, a, c, "different seeds differ")

	for _, budget := range []int{1, 2, 575} {
		got, err := hiprune.Random(576, budget, 7)
		require.NoError(t, err)
		assertSortedUnique(t, got, 576, budget)
	}
	for _, budget := range []int{5, 9} {
		got, err := hiprune.Random(5, budget, 1)
		require.NoError(t, err)
		assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	}
}

// Every token should be about equally likely: 3 of 10 over 20000 seeds is
// 6000 expected picks per token (standard deviation about 65).
func TestRandomIsUniform(t *testing.T) {
	var counts [10]int
	for seed := range uint64(20000) {
		got, err := hiprune.Random(10, 3, seed)
		require.NoError(t, err)
		for _, v := range got {
			counts[v]++
		}
	}
	for i, c := range counts {
		assert.InDelta(t, 6000, c, 400, "token %d", i)
	}
	// Many seeds give many different subsets (there are 120).
	seen := map[[3]int]bool{}
	for seed := range uint64(2000) {
		got, _ := hiprune.Random(10, 3, seed)
		seen[[3]int(got)] = true
	}
	assert.Greater(t, len(seen), 100)
}

func TestBaselineErrors(t *testing.T) {
	for _, f := range []struct {
		name string
		fn   func(n, budget int) ([]int, error)
	}{
		{"Uniform", hiprune.Uniform},
		{"Random", func(n, budget int) ([]int, error) { return hiprune.Random(n, budget, 1) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			got, err := f.fn(10, 0)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, hiprune.ErrBudget)
			assert.ErrorContains(t, err, "budget 0 must be >= 1")

			_, err = f.fn(10, -2)
			assert.ErrorIs(t, err, hiprune.ErrBudget)
			assert.ErrorContains(t, err, "budget -2")

			got, err = f.fn(0, 5)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, hiprune.ErrShape)
			assert.ErrorContains(t, err, "token count 0 must be >= 1")

			_, err = f.fn(-1, 5)
			assert.ErrorIs(t, err, hiprune.ErrShape)
		})
	}
}

func TestUniformLargeNoOverflow(t *testing.T) {
	const n = 1 << 62
	got, err := hiprune.Uniform(n, 4)
	require.NoError(t, err)
	assert.Equal(t, []int{0, n / 4, n / 2, 3 * (n / 4)}, got)
	assert.True(t, sort.IntsAreSorted(got))
}
