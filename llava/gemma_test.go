package llava_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// The tiny-gemma pair: a gemma3 language model (sliding-window layers
// included) and a SigLIP tower at 896 px whose 64 x 64 patches pool to a
// 16 x 16 grid of 256 tokens.

func gemmaPair(t *testing.T) (lm, mm string) {
	t.Helper()
	return fixture.Pair(t, "tiny-gemma")
}

func openGemma(t *testing.T) *llava.Pipeline {
	t.Helper()
	lm, mm := gemmaPair(t)
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// --prune none on Gemma 3 is llama.cpp's mtmd: the same text tokens
// (<start_of_image> / <end_of_image> included), the same KV cells at the
// same positions, first-token logits and greedy answer, for two images of
// different shapes in one message, each decoded with causal attention off.
func TestGemma3NoPruneMatchesMtmd(t *testing.T) {
	p := openGemma(t)
	assert.Equal(t, llava.Projector{Type: "gemma3", Family: "Gemma 3", Pruning: true}, p.Projector())
	assert.Contains(t, llava.PrunableProjectors(), `"gemma3" (Gemma 3)`)
	ctx := context.Background()
	a, b := qwenImage(t, 300, 200, 5), qwenImage(t, 120, 260, 6)
	s, err := p.NewSession(llava.SessionConfig{NCtx: 1024})
	require.NoError(t, err)
	defer s.Close()
	r, err := s.Prefill(ctx, llava.Turn{Text: "Compare " + llava.ImageMarker + " with " + llava.ImageMarker + ".",
		Images: []*llava.Image{a, b}, Prune: llava.Options{Method: llava.MethodNone}, Gen: greedy})
	require.NoError(t, err)
	st := r.Stats
	require.Len(t, st.Images, 2)
	for _, im := range st.Images {
		assert.Equal(t, [4]int{256, 256, 16, 16}, [4]int{im.TokensBefore, im.TokensAfter, im.GridW, im.GridH})
	}
	assert.Equal(t, 512, st.ImageTokens)
	assert.Equal(t, st.TextTokens+512, st.KVCells)
	assert.Equal(t, st.KVCells, s.Positions())
	assert.True(t, strings.HasPrefix(st.Prompt, "<start_of_turn>user\n"), "the model's Gemma template: %q", st.Prompt)
	ours := s.Context().Logits()

	_, mm := gemmaPair(t)
	ref, n, ch := mtmdEval(t, p, mm, 1024, st.Prompt, a, b)
	text := 0
	for i := 0; i < ch.Len(); i++ {
		if !ch.IsImage(i) {
			text += ch.NTokens(i)
		}
	}
	assert.Equal(t, text, st.TextTokens, "the same text tokens, delimiters included")
	assert.Equal(t, n, s.Positions(), "the next position")
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

// A pruned Gemma 3 image: the default keeps a third (85 of 256), budgets
// are counts or ratios of the 256; the kept tokens sit at consecutive
// positions between the delimiters (read back from the KV cache) and see
// each other non-causally: the session's logits are those of mtmd's text
// tokens around the kept rows decoded by hand with causal attention off,
// and not those of the same rows decoded causally.
func TestGemma3PrunedNonCausal(t *testing.T) {
	p := openGemma(t)
	ctx := context.Background()
	img := qwenImage(t, 300, 200, 7)
	in := p.Encoder().Info()
	assert.Equal(t, min(hiprune.DefaultObjectLayerSigLIP, in.NRun), in.ObjectLayer, "SigLIP's default object layer, capped by the tiny tower")
	for _, c := range []struct {
		o    llava.Options
		kept int
	}{{llava.Options{}, 85}, {llava.Options{Keep: 64}, 64}, {llava.Options{KeepRatio: 0.125}, 32}} {
		pr, err := p.PrepareImage(ctx, img, c.o)
		require.NoError(t, err)
		assert.Equal(t, [2]int{256, c.kept}, [2]int{pr.NTokens, len(pr.Kept)}, "%+v", c.o)
		pr.Release()
	}

	s, err := p.NewSession(llava.SessionConfig{NCtx: 1024})
	require.NoError(t, err)
	defer s.Close()
	r, err := s.Prefill(ctx, llava.Turn{Text: question + " " + llava.ImageMarker, Images: []*llava.Image{img}, Gen: greedy})
	require.NoError(t, err)
	st := r.Stats
	require.Len(t, st.Images, 1)
	assert.Equal(t, [2]int{256, 85}, [2]int{st.Images[0].TokensBefore, st.Images[0].TokensAfter})
	assert.Equal(t, st.TextTokens+85, st.KVCells)
	assert.Equal(t, st.KVCells, s.Positions())
	kv, err := s.Context().ReadKV()
	require.NoError(t, err)
	require.Len(t, kv.Pos, st.KVCells)
	for c := range kv.Pos {
		require.Equal(t, c, kv.Pos[c], "cell %d: consecutive positions", c)
	}

	// mtmd's text chunks around the image, and our kept rows in between.
	_, mm := gemmaPair(t)
	_, _, ch := mtmdEval(t, p, mm, 1024, st.Prompt, img)
	require.Equal(t, 3, ch.Len())
	require.True(t, ch.IsImage(1))
	before, after := ch.Tokens(0), ch.Tokens(2)
	pr, err := p.PrepareImage(ctx, img, llava.Options{})
	require.NoError(t, err)
	defer pr.Release()
	byHand := func(causal bool) []float32 {
		c, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: 1024, Threads: 2})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.DecodeTokens(before, 0, false))
		if causal {
			require.NoError(t, c.DecodeEmbeddings(pr.Embd, len(before), false))
		} else {
			require.NoError(t, c.DecodeEmbeddingsNonCausal(pr.Embd, len(before)))
		}
		require.NoError(t, c.DecodeTokens(after, len(before)+85, true))
		return c.Logits()
	}
	ours := s.Context().Logits()
	e := relErr(ours, byHand(false))
	t.Logf("pruned, non-causal by hand: logits max rel err %.2e", e)
	assert.LessOrEqual(t, e, 1e-5)
	assert.Greater(t, relErr(ours, byHand(true)), 1e-3, "the kept tokens must not be decoded causally")
	ans, err := r.Generate(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, ans)
}
