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
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

func openNeXT(t *testing.T, layout bridge.Layout) *llava.Pipeline {
	t.Helper()
	return openNeXTFlash(t, layout, llava.FlashAttnAuto)
}

func openNeXTFlash(t *testing.T, layout bridge.Layout, fa llava.FlashAttn) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny-next")
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2, Layout: layout, EncoderFlashAttn: fa})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func sessionCtx(t *testing.T, p *llava.Pipeline, nCtx int) *llava.Session {
	t.Helper()
	s, err := p.NewSession(llava.SessionConfig{NCtx: nCtx, Template: "llava"})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// With pruning off and llama.cpp's layout, a LLaVA-NeXT image goes into the
// language model exactly as llama.cpp's mtmd sends it: the same embeddings
// (every view, base first, no newline), the same prompt, the same
// first-token logits and greedy answer. Three shapes: a 2 x 2 grid (5
// views), a 3 x 1 grid (4 views) and an image small enough for the base view
// alone.
func TestNeXTNoPruneMatchesMtmd(t *testing.T) {
	p := openNeXTFlash(t, bridge.LayoutLlamaCpp, llava.FlashAttnOn) // as mtmd's clip runs
	_, mm := fixture.Pair(t, "tiny-next")
	mt, err := bridge.OpenMtmd(mm, p.Model(), bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer mt.Close()
	ctx := context.Background()
	none := llava.Options{Method: llava.MethodNone}
	type shape struct{ w, h, views int }
	shapes := emulator.Cases(t, []shape{{500, 375, 5}, {900, 300, 4}, {300, 200, 1}},
		func(s shape) bool { return s.views == 4 },
		"each case encodes every view twice with flash attention, whose fp16 arithmetic qemu runs in software (the 5-view case alone took 10 minutes); the 3 x 1 grid is multi-view and non-square")
	for _, tc := range shapes {
		img := &llava.Image{Name: "sample", RGB: fixture.Image(t, tc.w, tc.h, uint64(tc.w))}

		enc, err := p.Encode(ctx, img, 0)
		require.NoError(t, err)
		assert.Equal(t, tc.views, enc.Views, "%dx%d", tc.w, tc.h)
		assert.Equal(t, tc.views*576, enc.NTokens, "%dx%d: every view's tokens, nothing else", tc.w, tc.h)
		pr, err := p.Prune(context.Background(), enc, none)
		require.NoError(t, err)
		enc.Release()
		want, k, err := mt.EncodeImage(img.RGB)
		require.NoError(t, err)
		require.Equal(t, k, len(pr.Kept))
		e := relErr(pr.Embd, want)
		t.Logf("%dx%d: %d views, embeddings max rel err vs mtmd %.2e", tc.w, tc.h, tc.views, e)
		assert.LessOrEqual(t, e, 1e-3)

		s := sessionCtx(t, p, 4096)
		turn := llava.Turn{Text: question, Prepared: []*llava.Pruned{pr}, Prune: none, Gen: greedy}
		str, err := s.Prefill(ctx, turn)
		require.NoError(t, err)
		st := &str.Stats
		ours := append([]float32(nil), s.Context().Logits()...)
		prefillCells := st.KVCells
		ans, err := str.Generate(ctx)
		require.NoError(t, err)

		lctx, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: 4096, Threads: 2})
		require.NoError(t, err)
		ch, err := mt.Tokenize("USER: "+bridge.MtmdMarker()+"\n"+question+" ASSISTANT:", []*imageprep.RGB{img.RGB}, true)
		require.NoError(t, err)
		n, tm, err := mt.Eval(lctx, ch, 0, true)
		require.NoError(t, err)
		ch.Free()
		assert.Equal(t, tc.views*576, tm.ImageTokens)
		assert.Equal(t, st.TextTokens, tm.TextTokens)
		assert.Equal(t, prefillCells, n)
		e = relErr(ours, lctx.Logits())
		t.Logf("%dx%d: first-token logits max rel err vs mtmd %.2e", tc.w, tc.h, e)
		assert.LessOrEqual(t, e, 1e-3)
		smp := bridge.NewSampler(bridge.SamplerParams{Temp: 0})
		var b strings.Builder
		for i := 0; i < greedy.MaxTokens; i++ {
			tok := smp.Sample(lctx)
			if p.Model().IsEOG(tok) {
				break
			}
			b.Write(p.Model().TokenPiece(tok))
			require.NoError(t, lctx.DecodeTokens([]int32{tok}, n, true))
			n++
		}
		smp.Close()
		lctx.Close()
		assert.Equal(t, b.String(), ans, "%dx%d: greedy answer", tc.w, tc.h)
		pr.Release()
	}
}

// CLIP's own layout (the default) lays a LLaVA-NeXT image out as the model
// was trained: base view, tiles merged and cropped, a newline per row; the
// default budget is 1/9 of that, newlines included; Encode+Prune and
// PrepareImage agree; the turn's image tokens are what the budget says.
func TestNeXTDefaultLayout(t *testing.T) {
	p := openNeXT(t, bridge.LayoutCLSFirst)
	ctx := context.Background()
	// 500 x 375 -> 672 x 672, 2 x 2 tiles; the crop keeps rows 6..41 of 48
	img := &llava.Image{Name: "sample", RGB: fixture.Image(t, 500, 375, 11)}
	const n, newlines = 576 + 36*49, 36
	enc, err := p.Encode(ctx, img, 0)
	require.NoError(t, err)
	defer enc.Release()
	assert.Equal(t, n, enc.NTokens)
	assert.Equal(t, 5, enc.Views)
	assert.Equal(t, 9, enc.ObjectLayer)

	nl := p.Encoder().Newline()
	require.Len(t, nl, 64)
	all, err := p.Prune(context.Background(), enc, llava.Options{Method: llava.MethodNone})
	require.NoError(t, err)
	require.Len(t, all.Kept, n)
	for r := 0; r < newlines; r++ {
		i := 576 + r*49 + 48
		assert.Equal(t, nl, all.Embd[i*64:(i+1)*64], "row %d ends in the newline embedding", r)
	}
	assert.NotEqual(t, nl, all.Embd[(576+47)*64:(576+48)*64])

	for _, tc := range []struct {
		o    llava.Options
		want int
	}{
		{llava.Options{}, 260}, // round(2340 / 9)
		{llava.Options{KeepRatio: 640.0 / 2880}, 520},
		{llava.Options{Keep: 160}, 160},
		{llava.Options{Keep: 5000}, n},
		{llava.Options{Method: llava.MethodUniform, Keep: 100}, 100},
		{llava.Options{Method: llava.MethodRandom, Keep: 100, Seed: 3}, 100},
	} {
		pr, err := p.Prune(context.Background(), enc, tc.o)
		require.NoError(t, err)
		assert.Len(t, pr.Kept, tc.want, "%+v", tc.o)
		assert.Len(t, pr.Embd, tc.want*64)
		k := 0
		for j, i := range pr.Kept {
			assert.Equal(t, all.Embd[i*64:(i+1)*64], pr.Embd[j*64:(j+1)*64], "%+v: row %d is position %d's", tc.o, j, i)
			if i >= 576 && (i-576)%49 == 48 {
				k++
			}
		}
		assert.Equal(t, min(newlines, tc.want), k, "%+v: every newline kept", tc.o)
		require.Len(t, pr.Mask, 2, "base view and tiles")
		want, err := p.PrepareImage(ctx, img, tc.o)
		require.NoError(t, err)
		assert.Equal(t, want.Kept, pr.Kept, "%+v", tc.o)
		assert.Equal(t, want.Embd, pr.Embd, "%+v", tc.o)
		want.Release()
		pr.Release()
	}
	_, err = p.Prune(context.Background(), enc, llava.Options{Keep: 36})
	require.ErrorIs(t, err, llava.ErrOptions)
	assert.Contains(t, err.Error(), "keep at least 37")

	s := sessionCtx(t, p, 4096)
	str, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Gen: greedy})
	require.NoError(t, err)
	st := &str.Stats
	assert.Equal(t, 260, st.ImageTokens)
	require.Len(t, st.Images, 1)
	assert.Equal(t, 5, st.Images[0].Views)
	assert.Equal(t, n, st.Images[0].TokensBefore)

	// The turn is sized before any encoding, from the image's layout.
	small := sessionCtx(t, p, 256)
	_, err = small.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: llava.Options{Keep: 300}})
	require.ErrorIs(t, err, bridge.ErrContextFull)
	assert.Contains(t, err.Error(), "300 image")
}
