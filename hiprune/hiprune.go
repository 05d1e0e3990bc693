package hiprune

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// DefaultAlpha is the authors' default share of the budget spent on anchors
// and their buffers.
const DefaultAlpha = 0.1

// DefaultObjectLayer is the authors' object layer for CLIP ViT-L (1-based).
const DefaultObjectLayer = 9

// DefaultBudgets returns the budgets N' evaluated by the authors for the 576
// patch tokens of CLIP ViT-L/14 at 336 px, largest first.
func DefaultBudgets() []int { return []int{192, 128, 64} }

// Sentinel errors; every error returned by this package wraps exactly one of
// them, so callers can test the cause with errors.Is.
var (
	// ErrBudget reports a budget (N' or a baseline's budget) below 1.
	ErrBudget = errors.New("hiprune: invalid budget")
	// ErrAlpha reports an alpha outside [0, 1] or NaN.
	ErrAlpha = errors.New("hiprune: invalid alpha")
	// ErrShape reports inconsistent sizes: grid, score lengths, attention
	// tensor dimensions, or a CLS index out of range.
	ErrShape = errors.New("hiprune: invalid shape")
	// ErrScore reports a NaN or infinite score or attention value.
	ErrScore = errors.New("hiprune: invalid score")
)

// Config holds the selection parameters.
type Config struct {
	// Budget is N', the number of tokens to keep (>= 1).
	Budget int
	// Alpha is in [0, 1]; round-half-to-even(Budget*Alpha/5) anchors are used.
	Alpha float64
}

// Selection is the detailed result of SelectDetailed.
type Selection struct {
	// Indices are all kept tokens, ascending. Equal to what Select returns.
	Indices []int
	// Anchors are the kept top object-layer tokens, highest score first.
	Anchors []int
	// Buffers are the kept grid neighbours of anchors that are not
	// themselves anchors, ascending.
	Buffers []int
	// Registers are the tokens kept for their deep-layer score, ascending.
	Registers []int
}

// Token roles in Selector.role.
const (
	roleNone uint8 = iota
	roleAnchor
	roleBuffer
	roleRegister
)

// Selector holds scratch memory so that repeated selections do not allocate.
// The zero value is ready to use. A Selector must not be used by several
// goroutines at once; the package-level Select is safe for concurrent use.
type Selector struct {
	role    []uint8 // per token: roleNone, roleAnchor, roleBuffer or roleRegister
	heap    []int   // partial-selection heap
	anchors []int   // anchors in rank order
}

var selectorPool = sync.Pool{New: func() any { return new(Selector) }}

// Select returns the indices (ascending) of the tokens HiPrune keeps on a
// gridW x gridH row-major patch grid (index = y*gridW + x), given the
// object-layer and deep-layer score of every patch token.
//
// It keeps min(cfg.Budget, gridW*gridH) tokens. It is safe for concurrent use.
func Select(object, deep []float32, gridW, gridH int, cfg Config) ([]int, error) {
	s := selectorPool.Get().(*Selector)
	defer selectorPool.Put(s)
	all, err := s.run(object, deep, gridW, gridH, cfg)
	if err != nil {
		return nil, err
	}
	n := gridW * gridH
	if all {
		return appendRange(make([]int, 0, n), n), nil
	}
	return s.appendChosen(make([]int, 0, cfg.Budget)), nil
}

// Append is Select, appending the kept indices (ascending) to dst and
// returning the extended slice. On error dst is returned unchanged. With a
// dst of sufficient capacity it does not allocate.
func (s *Selector) Append(dst []int, object, deep []float32, gridW, gridH int, cfg Config) ([]int, error) {
	all, err := s.run(object, deep, gridW, gridH, cfg)
	if err != nil {
		return dst, err
	}
	if all {
		return appendRange(dst, gridW*gridH), nil
	}
	return s.appendChosen(dst), nil
}

// SelectDetailed is Select that also reports the role of every kept token.
// When the budget covers all tokens, Indices holds every token and the role
// lists are empty, because no selection takes place.
func SelectDetailed(object, deep []float32, gridW, gridH int, cfg Config) (Selection, error) {
	var s Selector
	all, err := s.run(object, deep, gridW, gridH, cfg)
	if err != nil {
		return Selection{}, err
	}
	n := gridW * gridH
	if all {
		return Selection{Indices: appendRange(make([]int, 0, n), n)}, nil
	}
	sel := Selection{Indices: s.appendChosen(make([]int, 0, cfg.Budget))}
	for _, a := range s.anchors {
		if s.role[a] == roleAnchor {
			sel.Anchors = append(sel.Anchors, a)
		}
	}
	for i, r := range s.role {
		switch r {
		case roleBuffer:
			sel.Buffers = append(sel.Buffers, i)
		case roleRegister:
			sel.Registers = append(sel.Registers, i)
		}
	}
	return sel, nil
}

func appendRange(dst []int, n int) []int {
	for i := range n {
		dst = append(dst, i)
	}
	return dst
}

func (s *Selector) appendChosen(dst []int) []int {
	for i, r := range s.role {
		if r != roleNone {
			dst = append(dst, i)
		}
	}
	return dst
}

// validate checks the inputs in a fixed order: budget, alpha, grid, lengths,
// scores.
func validate(object, deep []float32, gridW, gridH int, cfg Config) error {
	if cfg.Budget < 1 {
		return fmt.Errorf("%w: budget %d must be >= 1", ErrBudget, cfg.Budget)
	}
	if math.IsNaN(cfg.Alpha) || cfg.Alpha < 0 || cfg.Alpha > 1 {
		return fmt.Errorf("%w: alpha %v must be in [0, 1]", ErrAlpha, cfg.Alpha)
	}
	if gridW < 1 || gridH < 1 {
		return fmt.Errorf("%w: grid %d x %d must have both sides >= 1", ErrShape, gridW, gridH)
	}
	if gridW > math.MaxInt/gridH {
		return fmt.Errorf("%w: grid %d x %d is too large", ErrShape, gridW, gridH)
	}
	n := gridW * gridH
	if len(object) != n {
		return fmt.Errorf("%w: object scores have length %d, grid %d x %d needs %d", ErrShape, len(object), gridW, gridH, n)
	}
	if len(deep) != n {
		return fmt.Errorf("%w: deep scores have length %d, grid %d x %d needs %d", ErrShape, len(deep), gridW, gridH, n)
	}
	if err := checkFinite("object", object); err != nil {
		return err
	}
	return checkFinite("deep", deep)
}

func checkFinite(name string, v []float32) error {
	for i, x := range v {
		if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
			return fmt.Errorf("%w: %s score at index %d is %v", ErrScore, name, i, x)
		}
	}
	return nil
}

// run validates the inputs and, unless the budget covers every token
// (all == true), leaves the role of every token in s.role and the anchors in
// rank order in s.anchors.
func (s *Selector) run(object, deep []float32, gridW, gridH int, cfg Config) (all bool, err error) {
	if err := validate(object, deep, gridW, gridH, cfg); err != nil {
		return false, err
	}
	n := gridW * gridH
	budget := cfg.Budget
	if budget >= n {
		return true, nil
	}

	if cap(s.role) < n {
		s.role = make([]uint8, n)
	} else {
		s.role = s.role[:n]
		clear(s.role)
	}
	role := s.role

	// Anchors: top-k object scores, in rank order. k <= budget/5 + 1/2 < n.
	k := int(math.RoundToEven(float64(budget) * cfg.Alpha / 5))
	s.heap = topK(s.heap[:0], object, nil, k)
	sortHeap(s.heap, object)
	s.anchors = append(s.anchors[:0], s.heap...)

	// Anchors in rank order, each followed by its in-grid neighbours (up,
	// left, right, down), until the budget is reached. When anchors plus
	// buffers fit, nothing is cut and this is simply their union.
	count := 0
	add := func(i int, r uint8) {
		if role[i] == roleNone {
			count++
			role[i] = r
		} else if r == roleAnchor {
			role[i] = roleAnchor // an anchor already taken as a neighbour
		}
	}
	for _, a := range s.anchors {
		if count == budget {
			break
		}
		add(a, roleAnchor)
		y, x := a/gridW, a%gridW
		if y > 0 && count < budget {
			add(a-gridW, roleBuffer)
		}
		if x > 0 && count < budget {
			add(a-1, roleBuffer)
		}
		if x < gridW-1 && count < budget {
			add(a+1, roleBuffer)
		}
		if y < gridH-1 && count < budget {
			add(a+gridW, roleBuffer)
		}
	}

	// Registers: top deep scores among the tokens not chosen yet.
	s.heap = topK(s.heap[:0], deep, role, budget-count)
	for _, i := range s.heap {
		role[i] = roleRegister
	}
	return false, nil
}

// worse reports whether token a ranks below token b: a lower score, or an
// equal score and a higher index.
func worse(score []float32, a, b int) bool {
	sa, sb := score[a], score[b]
	return sa < sb || (sa == sb && a > b)
}

// topK appends to h (which must be empty) the k best-ranked tokens among
// those with role[i] == roleNone (all tokens when role is nil), as a heap
// whose root is the worst kept token. Fewer than k are returned when fewer
// tokens are eligible.
func topK(h []int, score []float32, role []uint8, k int) []int {
	if k <= 0 {
		return h
	}
	for i := range score {
		if role != nil && role[i] != roleNone {
			continue
		}
		if len(h) < k {
			h = append(h, i)
			siftUp(h, score, len(h)-1)
			continue
		}
		// Tokens arrive in ascending index order, so a tie with the root
		// keeps the root (lower index).
		if score[i] > score[h[0]] {
			h[0] = i
			siftDown(h, score, 0)
		}
	}
	return h
}

// sortHeap turns a heap built by topK into rank order (best first).
func sortHeap(h []int, score []float32) {
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h[:end], score, 0)
	}
}

func siftUp(h []int, score []float32, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(score, h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []int, score []float32, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(score, h[r], h[l]) {
			m = r
		}
		if !worse(score, h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
