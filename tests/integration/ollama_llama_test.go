// Package integration holds end-to-end tests that need no package of ours
// beyond the generated models: they prove the pinned llama.cpp, reached
// through the ollama module's own Go API, runs the generated pair.
package integration

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// generate loads the tiny LLaVA pair through ollama's llama package, encodes
// a PNG through its mtmd binding, evaluates text + image + text and samples
// greedily. It returns the image's embedding count, the positions used and
// the generated tokens.
func generate(t *testing.T, lmPath, mmPath string, img []byte, nGen int) (int, int, []int) {
	t.Helper()
	llama.BackendInit()
	model, err := llama.LoadModelFromFile(lmPath, llama.ModelParams{UseMmap: true})
	require.NoError(t, err)
	defer llama.FreeModel(model)
	lctx, err := llama.NewContextWithModel(model, llama.NewContextParams(2048, 512, 1, 2, ml.FlashAttentionAuto, ""))
	require.NoError(t, err)
	mt, err := llama.NewMtmdContext(lctx, mmPath)
	require.NoError(t, err)
	defer mt.Free()

	chunks, err := mt.MultimodalTokenize(lctx, img)
	require.NoError(t, err)
	var embeds [][]float32
	for _, c := range chunks {
		if c.Embed != nil {
			embeds = append(embeds, c.Embed)
		}
	}
	pre, err := model.Tokenize("USER: ", true, true)
	require.NoError(t, err)
	post, err := model.Tokenize("\nWhat is in the picture? ASSISTANT:", false, true)
	require.NoError(t, err)

	pos := 0
	tb, err := llama.NewBatch(512, 1, 0)
	require.NoError(t, err)
	defer tb.Free()
	eb, err := llama.NewBatch(512, 1, model.NEmbd())
	require.NoError(t, err)
	defer eb.Free()
	decodeTokens := func(toks []int, logitsLast bool) {
		tb.Clear()
		for i, tok := range toks {
			tb.Add(tok, nil, pos, logitsLast && i == len(toks)-1, 0)
			pos++
		}
		require.NoError(t, lctx.Decode(tb))
	}
	decodeTokens(pre, false)
	for off := 0; off < len(embeds); off += 512 {
		eb.Clear()
		for _, e := range embeds[off:min(off+512, len(embeds))] {
			eb.Add(0, e, pos, false, 0)
			pos++
		}
		require.NoError(t, lctx.Decode(eb))
	}
	decodeTokens(post, true)
	used := pos

	smp, err := llama.NewSamplingContext(model, llama.SamplingParams{Temp: 0, Seed: 1})
	require.NoError(t, err)
	var out []int
	for i := 0; i < nGen; i++ {
		tok := smp.Sample(lctx, -1)
		smp.Accept(tok, false)
		out = append(out, tok)
		if model.TokenIsEog(tok) {
			break
		}
		decodeTokens([]int{tok}, true)
	}
	return len(embeds), used, out
}

func TestLlamaCppRunsGeneratedPair(t *testing.T) {
	lm, mm := fixture.Pair(t, "tiny")
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, testmodel.SampleImage(400, 300, 9)))

	nImg, used, toks := generate(t, lm, mm, buf.Bytes(), 6)
	assert.Equal(t, 576, nImg, "LLaVA-1.5's 24x24 patch grid")
	assert.Greater(t, used, 576, "image plus text positions")
	require.NotEmpty(t, toks)

	_, used2, toks2 := generate(t, lm, mm, buf.Bytes(), 6)
	assert.Equal(t, used, used2)
	assert.Equal(t, toks, toks2, "greedy generation is deterministic")
}
