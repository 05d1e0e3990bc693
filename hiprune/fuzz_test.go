package hiprune_test

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

// refSelect is a deliberately naive transcription of the contract (full
// stable sorts, literal sequence of anchors and neighbours) used to check
// Select. It assumes valid inputs.
func refSelect(object, deep []float32, w, h int, cfg hiprune.Config) (result, anchors []int) {
	n := w * h
	if cfg.Budget >= n {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	byScore := func(s []float32) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] > s[idx[b]] })
		return idx
	}
	k := int(math.RoundToEven(float64(cfg.Budget) * cfg.Alpha / 5))
	anchors = byScore(object)[:k]

	chosen := make([]bool, n)
	var out []int
	take := func(i int) {
		if len(out) < cfg.Budget && !chosen[i] {
			chosen[i] = true
			out = append(out, i)
		}
	}
	for _, a := range anchors {
		x, y := a%w, a/w
		take(a)
		if y-1 >= 0 {
			take(a - w)
		}
		if x-1 >= 0 {
			take(a - 1)
		}
		if x+1 < w {
			take(a + 1)
		}
		if y+1 < h {
			take(a + w)
		}
	}
	for _, i := range byScore(deep) {
		take(i)
	}
	sort.Ints(out)
	return out, anchors
}

// requireSameList is require.Equal that does not distinguish nil from empty.
func requireSameList(t *testing.T, want, got []int) {
	t.Helper()
	if len(want) == 0 {
		require.Empty(t, got)
		return
	}
	require.Equal(t, want, got)
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// fuzzScores derives n scores from data. Quantised mode gives many ties;
// raw mode reinterprets bytes as float32 bits (NaN and Inf included).
func fuzzScores(data []byte, n, offset int, raw bool) []float32 {
	s := make([]float32, max(n, 0))
	if len(data) == 0 {
		return s
	}
	for i := range s {
		if raw {
			var b [4]byte
			for j := range b {
				b[j] = data[(4*i+j+offset)%len(data)]
			}
			s[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		} else {
			s[i] = float32(int(data[(i*7+offset)%len(data)])%9) - 4
		}
	}
	return s
}

func FuzzSelect(f *testing.F) {
	f.Add(uint8(4), uint8(4), int16(5), 1.0, uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(24), uint8(24), int16(64), 0.1, uint8(0), []byte("hierarchical attention"))
	f.Add(uint8(24), uint8(24), int16(192), 0.1, uint8(0x08), []byte("object layer nine, deep layer"))
	f.Add(uint8(5), uint8(5), int16(9), 1.0, uint8(0x02), []byte{9, 9, 9, 0, 0, 0})
	f.Add(uint8(1), uint8(1), int16(1), 0.5, uint8(0x02), []byte{})
	f.Add(uint8(0), uint8(3), int16(2), 0.5, uint8(0x02), []byte{1})
	f.Add(uint8(3), uint8(3), int16(0), 0.5, uint8(0x02), []byte{1})
	f.Add(uint8(3), uint8(3), int16(4), math.NaN(), uint8(0x03), []byte{1})
	f.Add(uint8(3), uint8(3), int16(4), 0.5, uint8(0x0a), []byte{0, 0, 0xc0, 0x7f}) // NaN bits
	f.Add(uint8(6), uint8(2), int16(30000), 0.5, uint8(0x01), []byte{5, 4})
	f.Add(uint8(200), uint8(7), int16(40), 0.3, uint8(0x04), []byte{3, 1, 4, 1, 5})

	f.Fuzz(func(t *testing.T, gw, gh uint8, budgetRaw int16, alphaRaw float64, mode uint8, data []byte) {
		// Grid sides in [-39, 39]: zero and negative sides are invalid.
		w := int(int8(gw)) % 40
		h := int(int8(gh)) % 40
		n := max(w, 0) * max(h, 0)

		budget := int(budgetRaw)
		if mode&0x01 == 0 {
			budget = int(uint16(budgetRaw)) % (n + 2) // 0 (invalid) .. n+1
		}
		alpha := alphaRaw
		if mode&0x02 == 0 {
			alpha = float64(math.Float64bits(alphaRaw)%1001) / 1000 // 0, 0.001, ..., 1
		}
		objLen, deepLen := n, n
		if mode&0x04 != 0 && len(data) > 0 {
			objLen += int(int8(data[0])) % 2
			deepLen += int(int8(data[len(data)-1])) % 2
		}
		raw := mode&0x08 != 0
		object := fuzzScores(data, objLen, 0, raw)
		deep := fuzzScores(data, deepLen, 3, raw)
		cfg := hiprune.Config{Budget: budget, Alpha: alpha}

		got, err := hiprune.Select(object, deep, w, h, cfg)

		// Expected outcome, first failing check wins.
		var wantErr error
		switch {
		case budget < 1:
			wantErr = hiprune.ErrBudget
		case math.IsNaN(alpha) || alpha < 0 || alpha > 1:
			wantErr = hiprune.ErrAlpha
		case w < 1 || h < 1 || len(object) != n || len(deep) != n:
			wantErr = hiprune.ErrShape
		case !finite(object) || !finite(deep):
			wantErr = hiprune.ErrScore
		}
		if wantErr != nil {
			require.Error(t, err)
			require.Nil(t, got)
			require.True(t, errors.Is(err, wantErr), "got %v, want %v", err, wantErr)
			return
		}
		require.NoError(t, err)

		// Invariants.
		require.Len(t, got, min(budget, n))
		for i, v := range got {
			require.True(t, v >= 0 && v < n, "index %d out of range", v)
			if i > 0 {
				require.Greater(t, v, got[i-1])
			}
		}
		want, anchors := refSelect(object, deep, w, h, cfg)
		in := make(map[int]bool, len(got))
		for _, v := range got {
			in[v] = true
		}
		for _, a := range anchors {
			require.True(t, in[a], "anchor %d missing", a)
		}
		// Exact agreement with the naive reference.
		require.Equal(t, want, got)

		sel, err := hiprune.SelectDetailed(object, deep, w, h, cfg)
		require.NoError(t, err)
		require.Equal(t, got, sel.Indices)
		if budget < n {
			requireSameList(t, anchors, sel.Anchors)
		}
	})
}

// TestSelectMatchesReference runs the fuzz checks on seeded random inputs so
// that plain `go test` covers many grids, budgets and tie patterns.
func TestSelectMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s hiprune.Selector
	for iter := range 3000 {
		w, h := 1+rng.IntN(30), 1+rng.IntN(30)
		if iter%10 == 0 {
			w, h = 24, 24
		}
		n := w * h
		levels := 2 + rng.IntN(50) // few levels: many ties
		object := make([]float32, n)
		deep := make([]float32, n)
		for i := range object {
			object[i] = float32(rng.IntN(levels))
			deep[i] = float32(rng.IntN(levels))
		}
		cfg := hiprune.Config{Budget: 1 + rng.IntN(n+2), Alpha: float64(rng.IntN(21)) / 20}
		want, anchors := refSelect(object, deep, w, h, cfg)
		got, err := s.Append(nil, object, deep, w, h, cfg)
		require.NoError(t, err)
		require.Equal(t, want, got, "iter %d: %dx%d %+v", iter, w, h, cfg)
		if cfg.Budget < n {
			sel, err := hiprune.SelectDetailed(object, deep, w, h, cfg)
			require.NoError(t, err)
			requireSameList(t, anchors, sel.Anchors)
		}
	}
}
