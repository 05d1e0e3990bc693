package hiprune

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// randomStream is the second PCG seed word used by Random, fixed so that a
// seed alone determines the result.
const randomStream = 0x9e3779b97f4a7c15

func checkBaseline(n, budget int) error {
	if n < 1 {
		return fmt.Errorf("%w: token count %d must be >= 1", ErrShape, n)
	}
	if budget < 1 {
		return fmt.Errorf("%w: budget %d must be >= 1", ErrBudget, budget)
	}
	return nil
}

// Uniform keeps min(budget, n) evenly spaced tokens out of n: index
// floor(i*n/budget) for i = 0..budget-1, ascending and unique. A budget >= n
// keeps every token.
func Uniform(n, budget int) ([]int, error) {
	if err := checkBaseline(n, budget); err != nil {
		return nil, err
	}
	if budget >= n {
		return appendRange(make([]int, 0, n), n), nil
	}
	out := make([]int, budget)
	for i := range out {
		// i*n may not fit in an int for huge n; i < budget keeps the
		// quotient below n.
		hi, lo := bits.Mul64(uint64(i), uint64(n))
		q, _ := bits.Div64(hi, lo, uint64(budget))
		out[i] = int(q)
	}
	return out, nil
}

// Random keeps min(budget, n) distinct tokens out of n chosen uniformly at
// random, returned ascending. The choice is a pure function of the seed
// (math/rand/v2 PCG seeded with seed and a fixed stream constant; Floyd's
// sampling algorithm). A budget >= n keeps every token.
func Random(n, budget int, seed uint64) ([]int, error) {
	if err := checkBaseline(n, budget); err != nil {
		return nil, err
	}
	if budget >= n {
		return appendRange(make([]int, 0, n), n), nil
	}
	rng := rand.New(rand.NewPCG(seed, randomStream))
	taken := make([]bool, n)
	for j := n - budget; j < n; j++ {
		t := rng.IntN(j + 1)
		if taken[t] {
			t = j
		}
		taken[t] = true
	}
	out := make([]int, 0, budget)
	for i, ok := range taken {
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}
