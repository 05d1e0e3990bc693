package llava_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// The tiny Qwen2.5-VL pair: 300x200 resizes to 308x196, an 11x7 grid of
// merged tokens (77, 11 positions); 100x260 to 112x252, 4x9 (36, 9).

func openQwen(t *testing.T, cacheBytes int64) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Qwen25VL(t)
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2, ImageCacheBytes: cacheBytes})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// qwenSession uses the model's own (ChatML) template.
func qwenSession(t *testing.T, p *llava.Pipeline, nCtx int) *llava.Session {
	t.Helper()
	s, err := p.NewSession(llava.SessionConfig{NCtx: nCtx})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func qwenMM(t *testing.T) string {
	_, mm := fixture.Qwen25VL(t)
	return mm
}

func qwenImage(t *testing.T, w, h int, seed uint64) *llava.Image {
	t.Helper()
	return &llava.Image{Name: "sample", RGB: fixture.Image(t, w, h, seed)}
}

// mtmdEval evaluates prompt (our Stats.Prompt, ImageMarker where images go)
// with llama.cpp's mtmd into a fresh context like the session's, returning
// the context, the next position and mtmd's chunks (freed at cleanup). mm
// is the pipeline's mmproj.
func mtmdEval(t *testing.T, p *llava.Pipeline, mm string, nCtx int, prompt string, imgs ...*llava.Image) (*bridge.Context, int, *bridge.MtmdChunks) {
	t.Helper()
	mt, err := bridge.OpenMtmd(mm, p.Model(), bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	t.Cleanup(mt.Close)
	ref, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: nCtx, Threads: 2})
	require.NoError(t, err)
	t.Cleanup(ref.Close)
	rgbs := make([]*imageprep.RGB, len(imgs))
	for i, img := range imgs {
		rgbs[i] = img.RGB
	}
	ch, err := mt.Tokenize(strings.ReplaceAll(prompt, llava.ImageMarker, bridge.MtmdMarker()), rgbs, true)
	require.NoError(t, err)
	t.Cleanup(ch.Free)
	n, _, err := mt.Eval(ref, ch, 0, true)
	require.NoError(t, err)
	return ref, n, ch
}

// sameKV asserts two contexts hold the same cells: positions, and keys at
// every layer.
func sameKV(t *testing.T, got, want *bridge.Context) {
	t.Helper()
	g, err := got.ReadKV()
	require.NoError(t, err)
	w, err := want.ReadKV()
	require.NoError(t, err)
	require.Equal(t, w.Pos, g.Pos, "cells' positions")
	require.Equal(t, w.NLayer(), g.NLayer())
	for l := 0; l < g.NLayer(); l++ {
		for c := range g.Pos {
			a, err := g.Keys(l, c)
			require.NoError(t, err)
			b, err := w.Keys(l, c)
			require.NoError(t, err)
			require.InDeltaSlice(t, b, a, 2e-3, "layer %d, cell %d: keys", l, c)
		}
	}
}

// --prune none on Qwen2.5-VL is llama.cpp's mtmd: the same prompt tokens
// (the <|vision_start|> / <|vision_end|> delimiters included), the same
// KV cells at the same M-RoPE positions, first-token logits and greedy
// answer, for two images of different grids in one message.
func TestQwenNoPruneMatchesMtmd(t *testing.T) {
	p := openQwen(t, 0)
	assert.Equal(t, llava.Projector{Type: "qwen2.5vl_merger", Family: "Qwen2.5-VL", Pruning: true}, p.Projector())
	assert.Contains(t, llava.PrunableProjectors(), `"qwen2.5vl_merger" (Qwen2.5-VL)`)
	ctx := context.Background()
	a, b := qwenImage(t, 300, 200, 1), qwenImage(t, 100, 260, 2)
	s := qwenSession(t, p, 1024)
	r, err := s.Prefill(ctx, llava.Turn{Text: "Compare " + llava.ImageMarker + " with " + llava.ImageMarker + ".",
		Images: []*llava.Image{a, b}, Prune: llava.Options{Method: llava.MethodNone}, Gen: greedy})
	require.NoError(t, err)
	st := r.Stats
	require.Len(t, st.Images, 2)
	assert.Equal(t, [4]int{77, 77, 11, 7}, [4]int{st.Images[0].TokensBefore, st.Images[0].TokensAfter, st.Images[0].GridW, st.Images[0].GridH})
	assert.Equal(t, [4]int{36, 36, 4, 9}, [4]int{st.Images[1].TokensBefore, st.Images[1].TokensAfter, st.Images[1].GridW, st.Images[1].GridH})
	assert.Equal(t, 113, st.ImageTokens)
	assert.Equal(t, st.TextTokens+113, st.KVCells, "a cell per token")
	assert.Equal(t, st.TextTokens+11+9, s.Positions(), "max(nx, ny) positions per image")
	assert.True(t, strings.HasPrefix(st.Prompt, "<|im_start|>user\n"), "the model's ChatML template: %q", st.Prompt)
	ours := s.Context().Logits()
	nPos := s.Positions()

	ref, n, ch := mtmdEval(t, p, qwenMM(t), 1024, st.Prompt, a, b)
	text := 0
	for i := 0; i < ch.Len(); i++ {
		if !ch.IsImage(i) {
			text += ch.NTokens(i)
		}
	}
	assert.Equal(t, text, st.TextTokens, "the same text tokens, delimiters included")
	assert.Equal(t, n, nPos, "the next position")
	sameKV(t, s.Context(), ref)
	e := relErr(ours, ref.Logits())
	t.Logf("first-token logits max rel err vs mtmd: %.2e", e)
	assert.LessOrEqual(t, e, 1e-4)

	ans, err := r.Generate(ctx)
	require.NoError(t, err)
	smp := bridge.NewSampler(bridge.SamplerParams{Temp: 0})
	defer smp.Close()
	var want strings.Builder
	for i := 0; i < greedy.MaxTokens; i++ {
		tok := smp.Sample(ref)
		if p.Model().IsEOG(tok) {
			break
		}
		want.Write(p.Model().TokenPiece(tok))
		require.NoError(t, ref.DecodeTokens([]int32{tok}, n, true))
		n++
	}
	assert.Equal(t, want.String(), ans, "greedy answer")
}

// Two turns, an image each: every image starts at the next position of
// the conversation, as in mtmd evaluating the whole conversation at once.
func TestQwenMultiTurnMatchesMtmd(t *testing.T) {
	p := openQwen(t, 0)
	ctx := context.Background()
	a, b := qwenImage(t, 100, 260, 3), qwenImage(t, 300, 200, 4)
	s := qwenSession(t, p, 1024)
	none := llava.Options{Method: llava.MethodNone}
	noGen := llava.GenOptions{MaxTokens: 0} // no answer: nothing to re-tokenize for mtmd
	_, st1, err := s.Ask(ctx, llava.Turn{Text: question, Images: []*llava.Image{a}, Prune: none, Gen: noGen})
	require.NoError(t, err)
	_, st2, err := s.Ask(ctx, llava.Turn{Text: "And " + llava.ImageMarker + "?", Images: []*llava.Image{b}, Prune: none, Gen: noGen})
	require.NoError(t, err)
	assert.Equal(t, st1.TextTokens+st2.TextTokens+36+77, st2.KVCells)
	assert.Equal(t, st1.TextTokens+st2.TextTokens+9+11, s.Positions())
	ref, n, _ := mtmdEval(t, p, qwenMM(t), 1024, st1.Prompt+st2.Prompt, a, b)
	assert.Equal(t, n, s.Positions())
	sameKV(t, s.Context(), ref)
	assert.LessOrEqual(t, relErr(s.Context().Logits(), ref.Logits()), 1e-4)
}

// A pruned image's kept tokens enter at the positions they have unpruned,
// and the text after it continues where it does unpruned: read back from
// the KV cache (positions, and layer-0 keys, which are RoPE-rotated by
// time, row and column), not recomputed. Budgets are ratios of the merged
// grid rounded half to even, as the authors round them.
func TestQwenPrunedKeepsPositions(t *testing.T) {
	p := openQwen(t, 0)
	ctx := context.Background()
	img := qwenImage(t, 300, 200, 5)

	e, err := p.Encode(ctx, img, 0)
	require.NoError(t, err)
	defer e.Release()
	assert.Equal(t, [3]int{11, 7, 77}, [3]int{e.GridW, e.GridH, e.NTokens})
	// Qwen2.5-VL's default object layer is 16; the tiny tower has 4 blocks.
	assert.Equal(t, min(16, p.Encoder().Info().NRun), e.ObjectLayer)
	for _, tc := range []struct {
		o    llava.Options
		want int
	}{
		{llava.Options{}, 26},                                             // 77 x 0.334 = 25.7
		{llava.Options{KeepRatio: 0.5}, 38},                               // 38.5: half to even
		{llava.Options{KeepRatio: 0.112, Method: llava.MethodUniform}, 9}, // 8.6
		{llava.Options{KeepRatio: 0.223, Method: llava.MethodRandom}, 17}, // 17.2
		{llava.Options{Keep: 10}, 10},
		{llava.Options{Keep: 500}, 77},
		{llava.Options{Method: llava.MethodNone}, 77},
	} {
		pr, err := p.Prune(context.Background(), e, tc.o)
		require.NoError(t, err)
		assert.Len(t, pr.Kept, tc.want, "%+v", tc.o)
		assert.Len(t, pr.Embd, tc.want*p.Model().NEmbd())
	}

	run := func(o llava.Options) (*llava.Session, *llava.Stats) {
		s := qwenSession(t, p, 1024)
		r, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
		require.NoError(t, err)
		return s, &r.Stats
	}
	full, stFull := run(llava.Options{Method: llava.MethodNone})
	pruned, st := run(llava.Options{})
	is := st.Images[0]
	require.Len(t, is.Kept, 26)
	assert.Equal(t, 26, st.ImageTokens)
	assert.Equal(t, st.TextTokens+26, st.KVCells)
	assert.Equal(t, full.Positions(), pruned.Positions(), "the text after the image continues where it does unpruned")
	assert.Equal(t, int64(26)*pruned.Context().KVBytesPerCell(), st.KVImageBytes)
	require.Len(t, is.Mask, 1)
	assert.Equal(t, [3]int{11, 7, 28}, [3]int{is.Mask[0].GridW, is.Mask[0].GridH, is.Mask[0].Patch}, "mask on the resized image's 28 px tokens")
	assert.Equal(t, is.Kept, is.Mask[0].Kept)

	// Where the image sits in the cells: after the text before it.
	_, _, ch := mtmdEval(t, p, qwenMM(t), 1024, stFull.Prompt, img)
	require.Equal(t, 3, ch.Len())
	nb, na := ch.NTokens(0), ch.NTokens(2)
	kvFull, err := full.Context().ReadKV()
	require.NoError(t, err)
	kv, err := pruned.Context().ReadKV()
	require.NoError(t, err)
	require.Len(t, kvFull.Pos, nb+77+na)
	require.Len(t, kv.Pos, nb+26+na, "cells: the text and the kept tokens")
	for c := range kv.Pos {
		rc := c // the same token's cell unpruned
		switch {
		case c >= nb+26:
			rc = c - 26 + 77
		case c >= nb:
			rc = nb + is.Kept[c-nb]
		}
		assert.Equal(t, kvFull.Pos[rc], kv.Pos[c], "cell %d's time position", c)
		got, err := kv.Keys(0, c)
		require.NoError(t, err)
		want, err := kvFull.Keys(0, rc)
		require.NoError(t, err)
		require.InDeltaSlice(t, want, got, 2e-3, "cell %d (unpruned cell %d): layer-0 keys", c, rc)
	}
	assert.Equal(t, nb, kv.Pos[nb], "the image's time position")
	assert.Equal(t, nb+11, kv.Pos[nb+26], "the text after: nb + max(11, 7)")
	// Keys differ between grid places: the check can fail.
	k0, _ := kvFull.Keys(0, nb+is.Kept[0])
	k1, _ := kvFull.Keys(0, nb+is.Kept[1])
	assert.NotEqual(t, k0, k1)
}

// A resent conversation reuses a Qwen image in the context: its positions
// are recorded, and the cells and positions after Sync are a fresh
// session's.
func TestQwenSyncReusesImage(t *testing.T) {
	p := openQwen(t, 32<<20)
	ctx := context.Background()
	img := qwenImage(t, 300, 200, 6)
	o := llava.Options{KeepRatio: 0.223}
	s := qwenSession(t, p, 1024)
	r, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
	require.NoError(t, err)
	answer, err := r.Generate(ctx)
	require.NoError(t, err)
	history := []llava.Message{
		{Role: llava.RoleUser, Text: question, Images: []*llava.Image{img}},
		{Role: llava.RoleAssistant, Text: answer},
	}
	st, err := s.Sync(ctx, history, o)
	require.NoError(t, err)
	require.Len(t, st.Images, 1)
	assert.True(t, st.Images[0].Reused)
	assert.Zero(t, st.ImageTokens)
	assert.Greater(t, st.ReusedTokens, 11, "the image and the text before it are kept")
	assert.Equal(t, int64(1), p.CacheStats().Encodes)
	second := llava.Turn{Text: "And the colours?", Prune: o, Gen: greedy}
	r2, err := s.Prefill(ctx, second)
	require.NoError(t, err)

	f := qwenSession(t, p, 1024)
	_, err = f.Append(ctx, history, o)
	require.NoError(t, err)
	rf, err := f.Prefill(ctx, second)
	require.NoError(t, err)
	assert.Equal(t, f.Positions(), s.Positions())
	assert.Equal(t, rf.Stats.KVCells, r2.Stats.KVCells)
	sameKV(t, s.Context(), f.Context())
	assert.LessOrEqual(t, relErr(s.Context().Logits(), f.Context().Logits()), 1e-4)
}

// The context-room check counts KV cells, not positions: a 600x600 image
// is 21x21 = 441 tokens in 21 positions, refused unpruned by a 256-token
// context before it is encoded, accepted pruned.
func TestQwenContextCountsCells(t *testing.T) {
	p := openQwen(t, 0)
	ctx := context.Background()
	img := qwenImage(t, 600, 600, 7)
	s := qwenSession(t, p, 256)
	_, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: llava.Options{Method: llava.MethodNone}, Gen: greedy})
	assert.ErrorIs(t, err, llava.ErrContextFull)
	assert.ErrorContains(t, err, "441 image")
	assert.Zero(t, p.CacheStats().Encodes, "refused before encoding")
	assert.Zero(t, s.Positions())
	r, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, 147, r.Stats.ImageTokens) // 441 x 0.334 = 147.3
	assert.Equal(t, r.Stats.TextTokens+147, r.Stats.KVCells)
}
