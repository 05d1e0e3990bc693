package hiprune_test

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/hiprune"
)

// The 4x4 grid used by most tests:
//
//	 0  1  2  3
//	 4  5  6  7
//	 8  9 10 11
//	12 13 14 15
//
// and the 5x5 grid:
//
//	 0  1  2  3  4
//	 5  6  7  8  9
//	10 11 12 13 14
//	15 16 17 18 19
//	20 21 22 23 24

// fill returns n scores equal to base, with the given overrides.
func fill(n int, base float32, set map[int]float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = base
	}
	for i, v := range set {
		s[i] = v
	}
	return s
}

// ramp returns scores equal to the token index.
func ramp(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(i)
	}
	return s
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

type selectCase struct {
	name          string
	w, h          int
	object, deep  []float32
	cfg           hiprune.Config
	want          []int
	anchors       []int // nil: not checked
	buffers       []int // nil: not checked
	registers     []int // nil: not checked
	checkRolesNil bool  // anchors/buffers/registers must all be empty
}

func runSelectCases(t *testing.T, cases []selectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hiprune.Select(tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)

			sel, err := hiprune.SelectDetailed(tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.want, sel.Indices)
			assertList(t, tc.anchors, sel.Anchors, "anchors")
			assertList(t, tc.buffers, sel.Buffers, "buffers")
			assertList(t, tc.registers, sel.Registers, "registers")
			if tc.checkRolesNil {
				assert.Empty(t, sel.Anchors)
				assert.Empty(t, sel.Buffers)
				assert.Empty(t, sel.Registers)
			}
			if !tc.checkRolesNil {
				assert.Len(t, sel.Indices, len(sel.Anchors)+len(sel.Buffers)+len(sel.Registers))
			}

			var s hiprune.Selector
			prefix := []int{-7}
			app, err := s.Append(prefix, tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			require.NoError(t, err)
			assert.Equal(t, append([]int{-7}, tc.want...), app)
		})
	}
}

// assertList compares a role list when the case specifies one (non-nil);
// an empty expectation accepts a nil or empty result.
func assertList(t *testing.T, want, got []int, what string) {
	t.Helper()
	switch {
	case want == nil:
	case len(want) == 0:
		assert.Empty(t, got, what)
	default:
		assert.Equal(t, want, got, what)
	}
}

// With alpha = 1 and 3 <= budget <= 7 there is exactly one anchor
// (budget/5 rounds to 1), so a single high object score places it.
func TestSelectCornerAnchors(t *testing.T) {
	one := 1.0
	runSelectCases(t, []selectCase{
		{
			// 0 has only right (1) and down (4); two registers by deep score:
			// 1 has the highest deep score but is already a buffer.
			name: "top-left", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{0: 0.9}),
			deep:   fill(16, 0.1, map[int]float32{1: 1, 15: 0.9, 10: 0.8}),
			cfg:    hiprune.Config{Budget: 5, Alpha: one},
			want:   []int{0, 1, 4, 10, 15}, anchors: []int{0}, buffers: []int{1, 4}, registers: []int{10, 15},
		},
		{
			// 3 = W-1 has left (2) and down (7); 4 is not its right neighbour.
			// 4 has the lowest deep score so it cannot sneak in as a register.
			name: "top-right no wrap", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{3: 0.9}),
			deep:   fill(16, 0.5, map[int]float32{4: 0, 5: 0.9}),
			cfg:    hiprune.Config{Budget: 4, Alpha: one},
			want:   []int{2, 3, 5, 7}, anchors: []int{3}, buffers: []int{2, 7}, registers: []int{5},
		},
		{
			// 12 has up (8) and right (13); 11 is not its left neighbour.
			name: "bottom-left no wrap", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{12: 0.9}),
			deep:   fill(16, 0.5, map[int]float32{11: 0, 0: 0.9}),
			cfg:    hiprune.Config{Budget: 4, Alpha: one},
			want:   []int{0, 8, 12, 13}, anchors: []int{12}, buffers: []int{8, 13}, registers: []int{0},
		},
		{
			// 15 has up (11) and left (14); budget 3 is exactly filled.
			name: "bottom-right", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{15: 0.9}),
			deep:   ramp(16),
			cfg:    hiprune.Config{Budget: 3, Alpha: one},
			want:   []int{11, 14, 15}, anchors: []int{15}, buffers: []int{11, 14}, registers: []int{},
		},
	})
}

func TestSelectEdgeAndInteriorAnchors(t *testing.T) {
	runSelectCases(t, []selectCase{
		{
			// 4 (left edge): up 0, right 5, down 8; 3 is not its left
			// neighbour (had it been, the four slots would go 4,0,3,5).
			name: "left edge", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{4: 0.9}),
			deep:   fill(16, 0, map[int]float32{3: 5}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{0, 4, 5, 8}, buffers: []int{0, 5, 8},
		},
		{
			// 7 (right edge): up 3, left 6, down 11; not 8.
			name: "right edge", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{7: 0.9}),
			deep:   fill(16, 0, map[int]float32{8: -5}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{3, 6, 7, 11},
		},
		{
			name: "top edge", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{1: 0.9}),
			deep:   fill(16, 0, nil),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{0, 1, 2, 5},
		},
		{
			name: "bottom edge", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{14: 0.9}),
			deep:   fill(16, 0, nil),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{10, 13, 14, 15},
		},
		{
			name: "interior 5", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{5: 0.9}),
			deep:   fill(16, 0, nil),
			cfg:    hiprune.Config{Budget: 5, Alpha: 1},
			want:   []int{1, 4, 5, 6, 9}, anchors: []int{5}, buffers: []int{1, 4, 6, 9}, registers: []int{},
		},
		{
			name: "interior 10", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{10: 0.9}),
			deep:   fill(16, 0, nil),
			cfg:    hiprune.Config{Budget: 5, Alpha: 1},
			want:   []int{6, 9, 10, 11, 14},
		},
		{
			// Non-square grid 3 wide, 2 high:  0 1 2 / 3 4 5.
			// 2 has left 1 and down 5; 3 (next row) is not its right.
			name: "3x2 right end", w: 3, h: 2,
			object: fill(6, 0, map[int]float32{2: 1}),
			deep:   fill(6, 0, map[int]float32{3: -1, 0: 1}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{0, 1, 2, 5}, anchors: []int{2}, buffers: []int{1, 5}, registers: []int{0},
		},
		{
			// A single row: no up or down neighbours at all.
			name: "1 row", w: 6, h: 1,
			object: fill(6, 0, map[int]float32{3: 1}),
			deep:   fill(6, 0, map[int]float32{0: 1}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{0, 2, 3, 4}, buffers: []int{2, 4}, registers: []int{0},
		},
		{
			// A single column: neighbours are index -/+ 1 (up/down).
			name: "1 column", w: 1, h: 6,
			object: fill(6, 0, map[int]float32{0: 1}),
			deep:   fill(6, 0, map[int]float32{5: 2, 4: 1}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{0, 1, 4, 5}, buffers: []int{1}, registers: []int{4, 5},
		},
	})
}

func TestSelectOverlappingNeighbourhoods(t *testing.T) {
	runSelectCases(t, []selectCase{
		{
			// Budget 10, alpha 1: 2 anchors, 5 and 6 side by side. Each is the
			// other's neighbour, so the union is {1,2,4,5,6,7,9,10} (8 tokens)
			// and two slots go to registers: 15 and 12. Chosen tokens have the
			// highest deep scores but are never counted twice.
			name: "adjacent", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{5: 0.9, 6: 0.8}),
			deep: fill(16, 0.1, map[int]float32{
				1: 1, 2: 1, 4: 1, 5: 1, 6: 1, 7: 1, 9: 1, 10: 1,
				15: 0.9, 12: 0.8, 0: 0.3,
			}),
			cfg:     hiprune.Config{Budget: 10, Alpha: 1},
			want:    []int{1, 2, 4, 5, 6, 7, 9, 10, 12, 15},
			anchors: []int{5, 6}, buffers: []int{1, 2, 4, 7, 9, 10}, registers: []int{12, 15},
		},
		{
			// Diagonal anchors 5 and 10 share neighbours 6 and 9:
			// union {1,4,5,6,9,10,11,14}, registers 0 and 3.
			name: "diagonal", w: 4, h: 4,
			object:  fill(16, 0.1, map[int]float32{5: 0.9, 10: 0.8}),
			deep:    fill(16, 0.1, map[int]float32{0: 0.9, 3: 0.8, 2: 0.2}),
			cfg:     hiprune.Config{Budget: 10, Alpha: 1},
			want:    []int{0, 1, 3, 4, 5, 6, 9, 10, 11, 14},
			anchors: []int{5, 10}, buffers: []int{1, 4, 6, 9, 11, 14}, registers: []int{0, 3},
		},
	})
}

func TestSelectTies(t *testing.T) {
	runSelectCases(t, []selectCase{
		{
			// 5 and 10 tie on object score: 5 is the anchor. Deep scores of
			// 8, 12 and 15 tie for the only register slot: 8 wins.
			name: "object and deep tie", w: 4, h: 4,
			object:  fill(16, 0.1, map[int]float32{10: 0.9, 5: 0.9}),
			deep:    fill(16, 0.2, map[int]float32{15: 0.7, 12: 0.7, 8: 0.7}),
			cfg:     hiprune.Config{Budget: 6, Alpha: 1},
			want:    []int{1, 4, 5, 6, 8, 9},
			anchors: []int{5}, buffers: []int{1, 4, 6, 9}, registers: []int{8},
		},
		{
			// Everything ties: anchor 0 (buffers 1, 4), registers 2, 3.
			name: "all equal", w: 4, h: 4,
			object:  fill(16, 0, nil),
			deep:    fill(16, 0, nil),
			cfg:     hiprune.Config{Budget: 5, Alpha: 1},
			want:    []int{0, 1, 2, 3, 4},
			anchors: []int{0}, buffers: []int{1, 4}, registers: []int{2, 3},
		},
		{
			// Two anchors from a full tie: 0 then 1 (rank order). Union
			// {0,1,2,4,5}; the five registers are the lowest free indices.
			name: "all equal two anchors", w: 4, h: 4,
			object:  fill(16, 0.5, nil),
			deep:    fill(16, 0.5, nil),
			cfg:     hiprune.Config{Budget: 10, Alpha: 1},
			want:    seq(0, 9),
			anchors: []int{0, 1}, buffers: []int{2, 4, 5}, registers: []int{3, 6, 7, 8, 9},
		},
		{
			// Negative zero equals zero: still a tie, lower index wins.
			name: "signed zero", w: 4, h: 1,
			object: []float32{0, 0, 0, 0},
			deep:   []float32{-1, float32(math.Copysign(0, -1)), 0, -1},
			cfg:    hiprune.Config{Budget: 1, Alpha: 0},
			want:   []int{1},
		},
	})
}

func TestSelectTruncation(t *testing.T) {
	runSelectCases(t, []selectCase{
		{
			// Budget 3 (one anchor, 0.6 rounds to 1): 5, up 1, left 4.
			name: "budget 3 interior", w: 4, h: 4,
			object:  fill(16, 0.1, map[int]float32{5: 0.9}),
			deep:    fill(16, 0.1, map[int]float32{6: 1, 9: 1}),
			cfg:     hiprune.Config{Budget: 3, Alpha: 1},
			want:    []int{1, 4, 5},
			anchors: []int{5}, buffers: []int{1, 4}, registers: []int{},
		},
		{
			// Budget 4: 5, up 1, left 4, right 6; down 9 is cut.
			name: "budget 4 interior", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{5: 0.9}),
			deep:   fill(16, 0.1, map[int]float32{9: 1}),
			cfg:    hiprune.Config{Budget: 4, Alpha: 1},
			want:   []int{1, 4, 5, 6},
		},
		{
			// Top edge: no up; 1, left 0, right 2; down 5 is cut.
			name: "budget 3 top edge", w: 4, h: 4,
			object: fill(16, 0.1, map[int]float32{1: 0.9}),
			deep:   fill(16, 0.1, map[int]float32{5: 1}),
			cfg:    hiprune.Config{Budget: 3, Alpha: 1},
			want:   []int{0, 1, 2},
		},
		{
			// Budget 8: 1.6 rounds to 2 anchors, 5 then 14; the union has 9
			// tokens. Order: 5,1,4,6,9, 14,10(up),13(left) = 8; 15 is cut.
			name: "two anchors 4x4", w: 4, h: 4,
			object:  fill(16, 0.1, map[int]float32{5: 0.9, 14: 0.8}),
			deep:    fill(16, 0.1, map[int]float32{15: 1}),
			cfg:     hiprune.Config{Budget: 8, Alpha: 1},
			want:    []int{1, 4, 5, 6, 9, 10, 13, 14},
			anchors: []int{5, 14}, buffers: []int{1, 4, 6, 9, 10, 13}, registers: []int{},
		},
		{
			// 5x5, budget 9: 1.8 rounds to 2 anchors, 6 then 18, union of 10.
			// Order: 6,1,5,7,11, 18,13,17,19; 23 (down of 18) is cut.
			name: "two anchors 5x5", w: 5, h: 5,
			object:  fill(25, 0, map[int]float32{6: 2, 18: 1}),
			deep:    fill(25, 0, map[int]float32{23: 1}),
			cfg:     hiprune.Config{Budget: 9, Alpha: 1},
			want:    []int{1, 5, 6, 7, 11, 13, 17, 18, 19},
			anchors: []int{6, 18}, buffers: []int{1, 5, 7, 11, 13, 17, 19}, registers: []int{},
		},
		{
			// Rank order matters, not index order: 18 outranks 6, so 18's
			// neighbours come first and 6 loses its down neighbour 11.
			name: "rank order not index order", w: 5, h: 5,
			object: fill(25, 0, map[int]float32{6: 1, 18: 2}),
			deep:   fill(25, 0, nil),
			cfg:    hiprune.Config{Budget: 9, Alpha: 1},
			// 18,13,17,19,23, 6,1,5,7
			want:    []int{1, 5, 6, 7, 13, 17, 18, 19, 23},
			anchors: []int{18, 6},
		},
	})
}

func TestSelectKeepAllAndSmallBudgets(t *testing.T) {
	object := fill(16, 0.1, map[int]float32{3: 0.9})
	deep := fill(16, 0.1, map[int]float32{9: 0.9, 7: -1})
	runSelectCases(t, []selectCase{
		{name: "budget == tokens", w: 4, h: 4, object: object, deep: deep,
			cfg: hiprune.Config{Budget: 16, Alpha: 0.1}, want: seq(0, 15), checkRolesNil: true},
		{name: "budget > tokens", w: 4, h: 4, object: object, deep: deep,
			cfg: hiprune.Config{Budget: 1000, Alpha: 1}, want: seq(0, 15), checkRolesNil: true},
		{name: "1x1 grid", w: 1, h: 1, object: []float32{3}, deep: []float32{-3},
			cfg: hiprune.Config{Budget: 1, Alpha: 1}, want: []int{0}, checkRolesNil: true},
		{
			// Budget 1: 1*alpha/5 <= 0.2 rounds to 0 anchors, so the single
			// token is the top deep one (9), not the top object one (3).
			name: "budget 1", w: 4, h: 4, object: object, deep: deep,
			cfg: hiprune.Config{Budget: 1, Alpha: 1}, want: []int{9},
			anchors: []int{}, buffers: []int{}, registers: []int{9},
		},
		{
			// Budget tokens-1 with alpha 0: drop the lowest deep score (7).
			name: "budget tokens-1", w: 4, h: 4, object: object, deep: deep,
			cfg: hiprune.Config{Budget: 15, Alpha: 0}, want: append(seq(0, 6), seq(8, 15)...),
		},
	})
}

// sparseObject gives a 16x16 grid's object scores with a clear ranking of
// six far-apart tokens: 40 > 100 > 200 > 250 > 10 > 130.
func sparseObject() []float32 {
	return fill(256, 0, map[int]float32{40: 6, 100: 5, 200: 4, 250: 3, 10: 2, 130: 1})
}

func TestSelectRoundHalfToEven(t *testing.T) {
	deep := ramp(256)
	for _, tc := range []struct {
		budget  int
		alpha   float64
		anchors []int
	}{
		{125, 0.1, []int{40, 100}},                     // 2.5 -> 2
		{175, 0.1, []int{40, 100, 200, 250}},           // 3.5 -> 4
		{25, 0.5, []int{40, 100}},                      // 2.5 -> 2
		{35, 0.5, []int{40, 100, 200, 250}},            // 3.5 -> 4
		{45, 0.5, []int{40, 100, 200, 250}},            // 4.5 -> 4
		{55, 0.5, []int{40, 100, 200, 250, 10, 130}},   // 5.5 -> 6
		{192, 0.1, []int{40, 100, 200, 250}},           // 3.84 -> 4
		{64, 0.1, []int{40}},                           // 1.28 -> 1
		{128, 0.1, []int{40, 100, 200}},                // 2.56 -> 3
		{20, 0.1, []int{}},                             // 0.4 -> 0
		{30, 1, []int{40, 100, 200, 250, 10, 130}},     // 6
		{12, 1, []int{40, 100}},                        // 2.4 -> 2
		{13, 1, []int{40, 100, 200}},                   // 2.6 -> 3
		{2, 1, []int{}},                                // 0.4 -> 0
		{250, 0, []int{}},                              // alpha 0
		{255, 0.02, []int{40}},                         // 1.02 -> 1
		{255, 1, []int{40, 100, 200, 250, 10, 130, 0}}, // 51 anchors: check the first 7
		{26, 0.5, []int{40, 100, 200}},                 // 2.6 -> 3
		{24, 0.5, []int{40, 100}},                      // 2.4 -> 2
		{10, 0.25, []int{}},                            // 0.5 -> 0
		{30, 0.25, []int{40, 100}},                     // 1.5 -> 2
		{50, 0.25, []int{40, 100}},                     // 2.5 -> 2
		{70, 0.25, []int{40, 100, 200, 250}},           // 3.5 -> 4
		{90, 0.25, []int{40, 100, 200, 250}},           // 4.5 -> 4
		{110, 0.25, []int{40, 100, 200, 250, 10, 130}}, // 5.5 -> 6
		{100, 0.25, []int{40, 100, 200, 250, 10}},      // 5
		{102, 0.25, []int{40, 100, 200, 250, 10}},      // 5.1 -> 5
		{108, 0.25, []int{40, 100, 200, 250, 10}},      // 5.4 -> 5
		{118, 0.25, []int{40, 100, 200, 250, 10, 130}}, // 5.9 -> 6
	} {
		sel, err := hiprune.SelectDetailed(sparseObject(), deep, 16, 16, hiprune.Config{Budget: tc.budget, Alpha: tc.alpha})
		require.NoError(t, err)
		require.Len(t, sel.Indices, tc.budget)
		if len(tc.anchors) == 0 {
			assert.Empty(t, sel.Anchors, "budget %d alpha %v", tc.budget, tc.alpha)
			continue
		}
		if tc.budget == 255 && tc.alpha == 1 {
			require.Len(t, sel.Anchors, 51)
			assert.Equal(t, tc.anchors, sel.Anchors[:7], "budget %d alpha %v", tc.budget, tc.alpha)
			continue
		}
		assert.Equal(t, tc.anchors, sel.Anchors, "budget %d alpha %v", tc.budget, tc.alpha)
	}
}

func TestSelectZeroAnchorsIsTopDeep(t *testing.T) {
	runSelectCases(t, []selectCase{
		{
			// 2*1/5 = 0.4 rounds to 0: the two top deep scores, no buffers.
			name: "budget 2 alpha 1", w: 4, h: 4,
			object: fill(16, 0, map[int]float32{0: 1}),
			deep:   fill(16, 0, map[int]float32{7: 0.9, 12: 0.8}),
			cfg:    hiprune.Config{Budget: 2, Alpha: 1},
			want:   []int{7, 12}, anchors: []int{}, buffers: []int{}, registers: []int{7, 12},
		},
		{
			// 20*0.1/5 = 0.4 rounds to 0: deep = index, so 5..24 are kept.
			name: "budget 20 alpha 0.1", w: 5, h: 5,
			object: fill(25, 0, map[int]float32{0: 1}),
			deep:   ramp(25),
			cfg:    hiprune.Config{Budget: 20, Alpha: 0.1},
			want:   seq(5, 24), anchors: []int{}, buffers: []int{},
		},
		{
			name: "alpha 0", w: 4, h: 4,
			object: fill(16, 0, map[int]float32{0: 1}),
			deep:   ramp(16),
			cfg:    hiprune.Config{Budget: 4, Alpha: 0},
			want:   []int{12, 13, 14, 15}, anchors: []int{},
		},
	})
}

func TestSelectAlphaOne(t *testing.T) {
	runSelectCases(t, []selectCase{{
		// Budget 10, alpha 1: 2 anchors, corners 0 and 15. 0 brings 1 and 4,
		// 15 brings 11 and 14; 4 registers by deep = index among the rest:
		// 13, 12, 10, 9.
		name: "corners", w: 4, h: 4,
		object:  fill(16, 0, map[int]float32{0: 0.9, 15: 0.8}),
		deep:    ramp(16),
		cfg:     hiprune.Config{Budget: 10, Alpha: 1},
		want:    []int{0, 1, 4, 9, 10, 11, 12, 13, 14, 15},
		anchors: []int{0, 15}, buffers: []int{1, 4, 11, 14}, registers: []int{9, 10, 12, 13},
	}})
}

func TestSelectErrors(t *testing.T) {
	ok16 := fill(16, 0.5, nil)
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name         string
		object, deep []float32
		w, h         int
		cfg          hiprune.Config
		sentinel     error
		msg          string
	}{
		{"budget 0", ok16, ok16, 4, 4, hiprune.Config{Budget: 0, Alpha: 0.1}, hiprune.ErrBudget, "budget 0 must be >= 1"},
		{"budget negative", ok16, ok16, 4, 4, hiprune.Config{Budget: -3, Alpha: 0.1}, hiprune.ErrBudget, "budget -3 must be >= 1"},
		{"alpha negative", ok16, ok16, 4, 4, hiprune.Config{Budget: 4, Alpha: -0.1}, hiprune.ErrAlpha, "alpha -0.1 must be in [0, 1]"},
		{"alpha above 1", ok16, ok16, 4, 4, hiprune.Config{Budget: 4, Alpha: 1.5}, hiprune.ErrAlpha, "alpha 1.5"},
		{"alpha NaN", ok16, ok16, 4, 4, hiprune.Config{Budget: 4, Alpha: math.NaN()}, hiprune.ErrAlpha, "alpha NaN"},
		{"alpha +Inf", ok16, ok16, 4, 4, hiprune.Config{Budget: 4, Alpha: math.Inf(1)}, hiprune.ErrAlpha, "alpha +Inf"},
		{"width 0", nil, nil, 0, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "grid 0 x 4"},
		{"height negative", ok16, ok16, 4, -1, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "grid 4 x -1"},
		{"grid overflow", ok16, ok16, math.MaxInt, 2, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "too large"},
		{"object short", ok16[:15], ok16, 4, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "object scores have length 15, grid 4 x 4 needs 16"},
		{"deep long", ok16, fill(17, 0, nil), 4, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "deep scores have length 17"},
		{"deep nil", ok16, nil, 4, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrShape, "deep scores have length 0"},
		{"object NaN", fill(25, 0, map[int]float32{17: nan}), fill(25, 0, nil), 5, 5, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrScore, "object score at index 17 is NaN"},
		{"deep +Inf", ok16, fill(16, 0, map[int]float32{3: inf}), 4, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrScore, "deep score at index 3 is +Inf"},
		{"deep -Inf", ok16, fill(16, 0, map[int]float32{0: -inf}), 4, 4, hiprune.Config{Budget: 4, Alpha: 0.1}, hiprune.ErrScore, "deep score at index 0 is -Inf"},
		// Invalid scores are rejected even when every token would be kept.
		{"NaN with keep-all budget", fill(16, 0, map[int]float32{15: nan}), ok16, 4, 4, hiprune.Config{Budget: 99, Alpha: 0.1}, hiprune.ErrScore, "object score at index 15 is NaN"},
		// Checks run in order: budget, alpha, grid, lengths, scores.
		{"budget before alpha", ok16, ok16, 4, 4, hiprune.Config{Budget: 0, Alpha: 2}, hiprune.ErrBudget, "budget 0"},
		{"alpha before shape", ok16, ok16, 0, 0, hiprune.Config{Budget: 1, Alpha: 2}, hiprune.ErrAlpha, "alpha 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hiprune.Select(tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "hiprune: ")
			for _, other := range []error{hiprune.ErrBudget, hiprune.ErrAlpha, hiprune.ErrShape, hiprune.ErrScore} {
				if other != tc.sentinel {
					assert.False(t, errors.Is(err, other), "must not also be %v", other)
				}
			}

			_, err = hiprune.SelectDetailed(tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			assert.ErrorIs(t, err, tc.sentinel)

			var s hiprune.Selector
			dst := []int{1, 2}
			out, err := s.Append(dst, tc.object, tc.deep, tc.w, tc.h, tc.cfg)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Equal(t, []int{1, 2}, out)
		})
	}
}

func TestSelectorReuseAndAllocs(t *testing.T) {
	var s hiprune.Selector
	big := fill(576, 0, map[int]float32{300: 1})
	bigDeep := ramp(576)
	small := fill(16, 0.1, map[int]float32{5: 0.9})

	// Alternate sizes so stale scratch from a larger call would show up.
	for range 3 {
		got, err := s.Append(nil, big, bigDeep, 24, 24, hiprune.Config{Budget: 64, Alpha: 1})
		require.NoError(t, err)
		want, err := hiprune.Select(big, bigDeep, 24, 24, hiprune.Config{Budget: 64, Alpha: 1})
		require.NoError(t, err)
		assert.Equal(t, want, got)

		got, err = s.Append(nil, small, small, 4, 4, hiprune.Config{Budget: 3, Alpha: 1})
		require.NoError(t, err)
		assert.Equal(t, []int{1, 4, 5}, got)
	}

	dst := make([]int, 0, 576)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, err = s.Append(dst[:0], big, bigDeep, 24, 24, hiprune.Config{Budget: 192, Alpha: hiprune.DefaultAlpha})
		if err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
	assert.Len(t, dst, 192)
}

func TestSelectConcurrent(t *testing.T) {
	const n = 24 * 24
	type job struct {
		object, deep []float32
		cfg          hiprune.Config
		want         []int
	}
	var jobs []job
	for j := range 8 {
		object := make([]float32, n)
		deep := make([]float32, n)
		for i := range object {
			object[i] = float32((i*37 + j*11) % 101)
			deep[i] = float32((i*53 + j*7) % 89)
		}
		cfg := hiprune.Config{Budget: 32 + 20*j, Alpha: float64(j) / 7}
		want, err := hiprune.Select(object, deep, 24, 24, cfg)
		require.NoError(t, err)
		jobs = append(jobs, job{object, deep, cfg, want})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 50 {
				jb := jobs[(g+r)%len(jobs)]
				got, err := hiprune.Select(jb.object, jb.deep, 24, 24, jb.cfg)
				if err != nil || !equalInts(got, jb.want) {
					errs <- "mismatch"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDefaults(t *testing.T) {
	assert.Equal(t, 0.1, hiprune.DefaultAlpha)
	assert.Equal(t, 9, hiprune.DefaultObjectLayer)
	assert.Equal(t, []int{192, 128, 64}, hiprune.DefaultBudgets())
	// The result is a fresh slice each time.
	b := hiprune.DefaultBudgets()
	b[0] = 1
	assert.Equal(t, 192, hiprune.DefaultBudgets()[0])
}
