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

// openJanus opens the generated Janus-Pro pair: a projector family the
// instrumented encoder does not run, so the pipeline uses llama.cpp's mtmd.
// mtmd adds no image delimiters for it and evaluates images causally, so a
// turn is the prompt's text with each image's 16 embeddings in place.
func openJanus(t *testing.T) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Janus(t)
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestProjectorReportsPruning(t *testing.T) {
	p := openJanus(t)
	want := llava.Projector{Type: "janus_pro", Family: "Janus-Pro", Pruning: false}
	assert.Equal(t, want, p.Projector())
	assert.Equal(t, `"janus_pro" (Janus-Pro)`, p.Projector().String())
	assert.Nil(t, p.Encoder())
	_, mm := fixture.Janus(t)
	pr, err := llava.ReadProjector(mm)
	require.NoError(t, err)
	assert.Equal(t, want, pr)

	ll := open(t, bridge.LayoutCLSFirst)
	assert.Equal(t, llava.Projector{Type: "mlp", Family: "LLaVA-1.5 / NeXT", Pruning: true}, ll.Projector())
	assert.Contains(t, llava.PrunableProjectors(), `"mlp" (LLaVA-1.5 / NeXT)`)
	require.NoError(t, ll.CheckPruning(llava.Options{Keep: 8}))

	// Only the default and "none" apply where nothing can be pruned.
	require.NoError(t, p.CheckPruning(llava.Options{}))
	require.NoError(t, p.CheckPruning(llava.Options{Method: llava.MethodNone}))
	for _, o := range []llava.Options{{Keep: 8}, {KeepRatio: 0.5}, {Method: llava.MethodHiPrune}, {Method: llava.MethodUniform},
		{Method: llava.MethodRandom}, {Alpha: 0.2}, {ObjectLayer: 3}} {
		err := p.CheckPruning(o)
		assert.ErrorIs(t, err, llava.ErrNoPruning, "%+v", o)
		assert.ErrorIs(t, err, llava.ErrOptions, "%+v", o)
		assert.ErrorContains(t, err, `"janus_pro" (Janus-Pro)`)
		assert.ErrorContains(t, err, `"mlp" (LLaVA-1.5 / NeXT)`)
	}
	_, err = p.PrepareImage(context.Background(), image(t, p, 1), llava.Options{})
	assert.ErrorIs(t, err, llava.ErrNoPruning)
}

// A turn on a Janus-Pro model is exactly llama.cpp's mtmd: same tokens,
// positions and first-token logits; every image token kept.
func TestMtmdSessionMatchesMtmd(t *testing.T) {
	p := openJanus(t)
	ctx := context.Background()
	img := image(t, p, 3)
	s := session(t, p)
	var seen []llava.ImageStats
	turn := llava.Turn{Text: question, Images: []*llava.Image{img}, Gen: greedy, OnImage: func(is llava.ImageStats) { seen = append(seen, is) }}
	str, err := s.Prefill(ctx, turn)
	require.NoError(t, err)
	st := &str.Stats
	require.Len(t, st.Images, 1)
	assert.Equal(t, seen, st.Images)
	assert.Equal(t, 16, st.Images[0].TokensBefore)
	assert.Equal(t, 16, st.Images[0].TokensAfter)
	assert.Positive(t, st.Images[0].Encode)
	assert.Equal(t, 16, st.ImageTokens)
	assert.Equal(t, st.TextTokens+16, st.KVCells)
	assert.Equal(t, st.KVCells, s.Positions())
	ours := s.Context().Logits()

	_, mm := fixture.Janus(t)
	mt, err := bridge.OpenMtmd(mm, p.Model(), bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer mt.Close()
	ref, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: 2048, Threads: 2})
	require.NoError(t, err)
	defer ref.Close()
	ch, err := mt.Tokenize("USER: "+bridge.MtmdMarker()+"\n"+question+" ASSISTANT:", []*imageprep.RGB{img.RGB}, true)
	require.NoError(t, err)
	defer ch.Free()
	n, tm, err := mt.Eval(ref, ch, 0, true)
	require.NoError(t, err)
	assert.Equal(t, s.Positions(), n)
	assert.Equal(t, st.TextTokens, tm.TextTokens)
	assert.Less(t, relErr(ours, ref.Logits()), 1e-4)

	ans, err := str.Generate(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, ans)
}

// Later turns continue the same cache: after two turns the logits are
// those of the whole conversation evaluated at once.
func TestMtmdSessionMultiTurn(t *testing.T) {
	p := openJanus(t)
	ctx := context.Background()
	a, b := image(t, p, 4), image(t, p, 5)
	s := session(t, p)
	// No answer tokens, so the reference needs no re-tokenized answer.
	none := llava.GenOptions{MaxTokens: 0}
	ask := func(turn llava.Turn) *llava.Stats {
		t.Helper()
		_, st, err := s.Ask(ctx, turn)
		require.NoError(t, err)
		return st
	}
	st1 := ask(llava.Turn{Text: question, Images: []*llava.Image{a}, Gen: none})
	st2 := ask(llava.Turn{Text: "And " + llava.ImageMarker + " this one?", Images: []*llava.Image{b}, Gen: none})
	st3 := ask(llava.Turn{Text: "Which is brighter?", Gen: none})
	assert.Equal(t, 16, st2.ImageTokens)
	assert.Zero(t, st3.ImageTokens)
	assert.Equal(t, st1.TextTokens+st2.TextTokens+st3.TextTokens+32, st3.KVCells)
	ours := s.Context().Logits()

	_, mm := fixture.Janus(t)
	mt, err := bridge.OpenMtmd(mm, p.Model(), bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer mt.Close()
	ref, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: 2048, Threads: 2})
	require.NoError(t, err)
	defer ref.Close()
	all := strings.ReplaceAll(st1.Prompt+st2.Prompt+st3.Prompt, llava.ImageMarker, bridge.MtmdMarker())
	ch, err := mt.Tokenize(all, []*imageprep.RGB{a.RGB, b.RGB}, true)
	require.NoError(t, err)
	defer ch.Free()
	n, _, err := mt.Eval(ref, ch, 0, true)
	require.NoError(t, err)
	assert.Equal(t, n, s.Positions())
	assert.Less(t, relErr(ours, ref.Logits()), 1e-4)

	// Reset starts over; a refused turn leaves the session usable.
	s.Reset()
	_, err = s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{a}, Prune: llava.Options{Keep: 8}, Gen: none})
	assert.ErrorIs(t, err, llava.ErrNoPruning)
	_, err = s.Prefill(ctx, llava.Turn{Text: "say " + bridge.MtmdMarker(), Gen: none})
	assert.ErrorIs(t, err, llava.ErrOptions, "mtmd's own marker in the text")
	str, err := s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{a}, Gen: none})
	require.NoError(t, err)
	st := &str.Stats
	assert.Equal(t, st1.TextTokens, st.TextTokens)
	assert.Equal(t, st1.KVCells, st.KVCells)
}

// A message that cannot fit is refused before its images are encoded.
func TestMtmdSessionContextFull(t *testing.T) {
	p := openJanus(t)
	s, err := p.NewSession(llava.SessionConfig{NCtx: 256, Template: "llava"})
	require.NoError(t, err)
	defer s.Close()
	imgs := make([]*llava.Image, 20) // 320 image tokens
	img := image(t, p, 6)
	for i := range imgs {
		imgs[i] = img
	}
	_, err = s.Prefill(context.Background(), llava.Turn{Text: question, Images: imgs, Gen: greedy})
	assert.ErrorIs(t, err, bridge.ErrContextFull)
	assert.Zero(t, s.Positions())
	assert.Zero(t, s.Context().KVCells())
}

// A resent conversation (Session.Append, as chat serve uses it) loads
// through mtmd too, and a later turn continues it.
func TestMtmdSessionAppend(t *testing.T) {
	p := openJanus(t)
	ctx := context.Background()
	s := session(t, p)
	msgs := []llava.Message{
		{Role: llava.RoleUser, Text: question, Images: []*llava.Image{image(t, p, 7)}},
		{Role: llava.RoleAssistant, Text: "A picture."},
	}
	_, err := s.Append(ctx, msgs, llava.Options{Keep: 8})
	assert.ErrorIs(t, err, llava.ErrNoPruning)
	assert.Zero(t, s.Positions(), "a refused append leaves the session as it was")
	st, err := s.Append(ctx, msgs, llava.Options{})
	require.NoError(t, err)
	assert.Equal(t, 16, st.ImageTokens)
	assert.Equal(t, st.TextTokens+16, s.Positions())
	ans, st2, err := s.Ask(ctx, llava.Turn{Text: "And the colours?", Gen: greedy})
	require.NoError(t, err)
	assert.NotEmpty(t, ans)
	want := st.KVCells + st2.TextTokens + st2.DecodeTokens
	if st2.StopReason == llava.StopEOG {
		want++ // the end token is kept in the cache
	}
	assert.Equal(t, want, st2.KVCells)
}
