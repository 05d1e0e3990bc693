package testmodel

import (
	"container/heap"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildVocabLayout(t *testing.T) {
	v, err := BuildVocab(0)
	require.NoError(t, err)
	require.Equal(t, BuiltinVocabSize(), v.Len())
	require.Len(t, v.Scores, v.Len())
	require.Len(t, v.Types, v.Len())

	assert.Equal(t, []string{"<unk>", "<s>", "</s>"}, v.Tokens[:3])
	assert.Equal(t, []int32{TokenUnknown, TokenControl, TokenControl}, v.Types[:3])
	for b := 0; b < 256; b++ {
		id := 3 + b
		assert.Equal(t, fmt.Sprintf("<0x%02X>", b), v.Tokens[id])
		assert.Equal(t, TokenByte, v.Types[id])
		got, ok := v.ID(fmt.Sprintf("<0x%02X>", b))
		assert.True(t, ok)
		assert.Equal(t, id, got)
	}
	assert.Equal(t, "<0x0A>", v.Tokens[3+10], "newline byte token spelled like llama.cpp's byte_to_token")
	assert.Equal(t, SpaceMarker, v.Tokens[259])

	seen := map[string]bool{}
	for i, p := range v.Tokens {
		require.Falsef(t, seen[p], "duplicate piece %q at %d", p, i)
		seen[p] = true
		require.True(t, utf8.ValidString(p))
		if i >= 259 {
			require.Equal(t, TokenNormal, v.Types[i])
			if i > 259 {
				require.Less(t, v.Scores[i], v.Scores[i-1], "scores strictly decrease")
			}
		}
	}
	for _, p := range []string{"▁the", "▁The", "the", "▁image", "▁describe", "▁picture", "▁a", "a", "Z", "▁7", ".", "▁,"} {
		_, ok := v.ID(p)
		assert.True(t, ok, p)
	}
	t.Logf("built-in vocabulary: %d tokens", v.Len())
}

func TestBuildVocabSizes(t *testing.T) {
	for _, n := range []int{BuiltinVocabSize(), BuiltinVocabSize() + 1, 32000, 50000} {
		v, err := BuildVocab(n)
		require.NoError(t, err)
		require.Equal(t, n, v.Len())
		set := map[string]bool{}
		for _, p := range v.Tokens {
			require.False(t, set[p], "duplicate %q", p)
			set[p] = true
		}
		require.Len(t, v.index, n)
	}
	_, err := BuildVocab(1000)
	assert.ErrorContains(t, err, "requested vocabulary size 1000 is smaller than the built-in vocabulary")
}

func TestVocabRejectsDuplicates(t *testing.T) {
	v := &Vocab{index: map[string]int{}}
	require.NoError(t, v.add("▁cat", TokenNormal, -1))
	require.NoError(t, v.add("cat", TokenNormal, -2))
	err := v.add("▁cat", TokenNormal, -3)
	assert.EqualError(t, err, `testmodel: duplicate vocabulary piece "▁cat" (ids 0 and 2)`)
	assert.Equal(t, 2, v.Len(), "the duplicate was not added")
	assert.ErrorContains(t, v.add("", TokenNormal, 0), "empty vocabulary piece")
	assert.ErrorContains(t, v.add("\xff", TokenNormal, 0), "not valid UTF-8")
}

func TestSynthPiecesUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200000; i++ {
		p := synthPiece(i)
		require.False(t, seen[p], "synthPiece(%d)=%q repeats", i, p)
		seen[p] = true
		require.GreaterOrEqual(t, utf8.RuneCountInString(strings.TrimPrefix(p, SpaceMarker)), 3)
	}
}

// spmTokenize mirrors llama.cpp's llm_tokenizer_spm (src/llama-vocab.cpp):
// spaces become ▁, a ▁ is prepended, UTF-8 characters are merged pairwise by
// highest piece score (leftmost first on ties), and symbols that are not
// pieces fall back to <0xXX> byte tokens.
func spmTokenize(v *Vocab, text string) []int {
	text = SpaceMarker + strings.ReplaceAll(text, " ", SpaceMarker)
	type sym struct {
		text       string
		prev, next int
	}
	var syms []sym
	for i, r := range []rune(text) {
		syms = append(syms, sym{text: string(r), prev: i - 1, next: i + 1})
	}
	syms[len(syms)-1].next = -1
	pq := &bigramHeap{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		id, ok := v.ID(syms[l].text + syms[r].text)
		if ok {
			heap.Push(pq, bigram{l: l, r: r, score: v.Scores[id], size: len(syms[l].text) + len(syms[r].text)})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for pq.Len() > 0 {
		b := heap.Pop(pq).(bigram)
		L, R := &syms[b.l], &syms[b.r]
		if L.text == "" || R.text == "" || len(L.text)+len(R.text) != b.size {
			continue // outdated
		}
		L.text += R.text
		R.text = ""
		L.next = R.next
		if R.next >= 0 {
			syms[R.next].prev = b.l
		}
		try(L.prev, b.l)
		try(b.l, L.next)
	}
	var ids []int
	for i := 0; i >= 0; i = syms[i].next {
		if id, ok := v.ID(syms[i].text); ok {
			ids = append(ids, id)
			continue
		}
		for _, c := range []byte(syms[i].text) {
			id, _ := v.ID(fmt.Sprintf("<0x%02X>", c))
			ids = append(ids, id)
		}
	}
	return ids
}

type bigram struct {
	l, r  int
	score float32
	size  int
}

type bigramHeap []bigram

func (h bigramHeap) Len() int { return len(h) }
func (h bigramHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].l < h[j].l
}
func (h bigramHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *bigramHeap) Push(x any)   { *h = append(*h, x.(bigram)) }
func (h *bigramHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func detok(v *Vocab, ids []int) string {
	var b []byte
	for _, id := range ids {
		p := v.Tokens[id]
		if v.Types[id] == TokenByte {
			var c byte
			fmt.Sscanf(p, "<0x%02X>", &c)
			b = append(b, c)
			continue
		}
		b = append(b, p...)
	}
	return strings.ReplaceAll(string(b), SpaceMarker, " ")
}

func TestVocabTokenizesAnything(t *testing.T) {
	v, err := BuildVocab(32000)
	require.NoError(t, err)
	for _, text := range []string{
		"USER: <image>\nDescribe the image in detail. ASSISTANT:",
		"What color is the big circle on the left?",
		"naïve café – 漢字 😀 \x01\t tab",
		"1234567890 !@#$%^&*()_+-=[]{};':\",./<>?`~|\\",
	} {
		ids := spmTokenize(v, text)
		require.NotEmpty(t, ids)
		for _, id := range ids {
			require.NotEqual(t, UnkID, id, "no <unk> needed: %q", text)
		}
		assert.Equal(t, " "+text, detok(v, ids), "round trip")
	}

	// most common words become one token
	single := 0
	for _, w := range commonWords {
		ids := spmTokenize(v, w)
		if len(ids) == 1 && v.Tokens[ids[0]] == SpaceMarker+w {
			single++
		}
	}
	frac := float64(single) / float64(len(commonWords))
	t.Logf("%d/%d common words are a single token", single, len(commonWords))
	assert.Greater(t, frac, 0.9)
	for _, w := range []string{"the", "image", "describe", "picture", "color", "question"} {
		ids := spmTokenize(v, w)
		assert.Equal(t, []string{SpaceMarker + w}, []string{v.Tokens[ids[0]]}, w)
		assert.Len(t, ids, 1, w)
	}
}
