package llava_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

const question = "What is in the picture?"

func open(t *testing.T, layout bridge.Layout) *llava.Pipeline {
	t.Helper()
	return openFlash(t, layout, llava.FlashAttnAuto)
}

// openFlash opens the tiny pair with the encoder's flash attention set:
// FlashAttnOn is what llama.cpp's mtmd runs on the CPU, for bit-level
// comparisons with it.
func openFlash(t *testing.T, layout bridge.Layout, fa llava.FlashAttn) *llava.Pipeline {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny")
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2, Layout: layout, EncoderFlashAttn: fa})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func session(t *testing.T, p *llava.Pipeline) *llava.Session {
	t.Helper()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 2048, Template: "llava"})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func image(t *testing.T, p *llava.Pipeline, seed uint64) *llava.Image {
	t.Helper()
	return &llava.Image{Name: "sample", RGB: fixture.Image(t, 500, 375, seed)}
}

var greedy = llava.GenOptions{MaxTokens: 8, Temp: 0}

func TestBudgetSetsImagePositions(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	img := image(t, p, 1)
	for _, tc := range []struct {
		opts llava.Options
		want int
	}{
		{llava.Options{Keep: 64}, 64},
		{llava.Options{Method: llava.MethodNone}, 576},
		{llava.Options{}, 192}, // default: a third
		{llava.Options{KeepRatio: 0.111}, 64},
		{llava.Options{Method: llava.MethodUniform, Keep: 100}, 100},
		{llava.Options{Method: llava.MethodRandom, Keep: 100, Seed: 3}, 100},
		{llava.Options{Keep: 5000}, 576},
	} {
		s := session(t, p)
		str, err := s.Prefill(context.Background(), llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: tc.opts, Gen: greedy})
		require.NoError(t, err)
		st := &str.Stats
		require.Len(t, st.Images, 1)
		assert.Equal(t, 576, st.Images[0].TokensBefore)
		assert.Equal(t, tc.want, st.Images[0].TokensAfter, "%+v", tc.opts)
		assert.Equal(t, tc.want, st.ImageTokens)
		// Exactly the kept embeddings enter the cache, at consecutive positions.
		assert.Equal(t, st.TextTokens+tc.want, st.KVCells, "%+v", tc.opts)
		assert.Equal(t, st.KVCells, s.Positions())
		assert.Equal(t, int64(tc.want)*s.Context().KVBytesPerCell(), st.KVImageBytes)
		ans, err := str.Generate(context.Background())
		require.NoError(t, err)
		assert.NotEmpty(t, ans)
		assert.Equal(t, st.TextTokens+tc.want+st.DecodeTokens, st.KVCells, "generated tokens follow in the cache")
	}
}

// The HiPrune selection is what enters the context: the kept indices
// hold the anchors' neighbourhoods and are sorted.
func TestHiPruneKeepsSortedUniqueTokens(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	pr, err := p.PrepareImage(context.Background(), image(t, p, 2), llava.Options{Keep: 64})
	require.NoError(t, err)
	require.Len(t, pr.Kept, 64)
	for i := 1; i < len(pr.Kept); i++ {
		require.Less(t, pr.Kept[i-1], pr.Kept[i])
	}
	assert.Len(t, pr.Embd, 64*p.Model().NEmbd())
	full, err := p.PrepareImage(context.Background(), image(t, p, 2), llava.Options{Method: llava.MethodNone})
	require.NoError(t, err)
	w := p.Model().NEmbd()
	for j, i := range pr.Kept {
		assert.Equal(t, full.Embd[i*w:(i+1)*w], pr.Embd[j*w:(j+1)*w], "row %d is token %d's embedding", j, i)
	}
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / den
}

// With pruning off, our path and llama.cpp's own mtmd path agree: same
// prompt tokens, same first-token logits, same greedy answer. Our encoder
// runs in llama.cpp's token layout and with flash attention here, as
// mtmd's clip does.
func TestNoPruneMatchesMtmd(t *testing.T) {
	p := openFlash(t, bridge.LayoutLlamaCpp, llava.FlashAttnOn)
	img := image(t, p, 3)
	ctx := context.Background()

	s := session(t, p)
	turn := llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: llava.Options{Method: llava.MethodNone}, Gen: greedy}
	str, err := s.Prefill(ctx, turn)
	require.NoError(t, err)
	st := &str.Stats
	ours := s.Context().Logits()
	prefillCells := st.KVCells
	ans, err := str.Generate(ctx)
	require.NoError(t, err)

	lctx, err := bridge.NewContext(p.Model(), bridge.ContextParams{NCtx: 2048, Threads: 2})
	require.NoError(t, err)
	defer lctx.Close()
	_, mm := fixture.Pair(t, "tiny")
	mt, err := bridge.OpenMtmd(mm, p.Model(), bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer mt.Close()
	ch, err := mt.Tokenize("USER: "+bridge.MtmdMarker()+"\n"+question+" ASSISTANT:", []*imageprep.RGB{img.RGB}, true)
	require.NoError(t, err)
	defer ch.Free()
	n, tm, err := mt.Eval(lctx, ch, 0, true)
	require.NoError(t, err)
	assert.Equal(t, 576, tm.ImageTokens)
	assert.Equal(t, st.TextTokens, tm.TextTokens)
	assert.Equal(t, prefillCells, n)
	theirs := lctx.Logits()
	e := relErr(ours, theirs)
	t.Logf("first-token logits max rel err vs mtmd: %.2e", e)
	assert.LessOrEqual(t, e, 1e-3)

	smp := bridge.NewSampler(bridge.SamplerParams{Temp: 0})
	defer smp.Close()
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
	assert.Equal(t, b.String(), ans)
}

// A budget at least the image's token count keeps everything: the result
// is identical to no pruning.
func TestFullBudgetEqualsNoPruning(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	img := image(t, p, 4)
	var logits [][]float32
	var answers []string
	for _, o := range []llava.Options{{Method: llava.MethodNone}, {Keep: 576}, {KeepRatio: 1}} {
		s := session(t, p)
		r, err := s.Prefill(context.Background(), llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
		require.NoError(t, err)
		logits = append(logits, s.Context().Logits())
		ans, err := r.Generate(context.Background())
		require.NoError(t, err)
		answers = append(answers, ans)
	}
	assert.Equal(t, logits[0], logits[1])
	assert.Equal(t, logits[0], logits[2])
	assert.Equal(t, answers[0], answers[1])
}

func TestGenerationIsDeterministic(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	img := image(t, p, 5)
	gen := llava.GenOptions{MaxTokens: 12, Temp: 0.9, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: 42}
	var outs []string
	for i := 0; i < 2; i++ {
		s := session(t, p)
		var streamed strings.Builder
		ans, st, err := s.Ask(context.Background(), llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: llava.Options{Keep: 64}, Gen: gen,
			OnToken: func(piece string) error { streamed.WriteString(piece); return nil }})
		require.NoError(t, err)
		assert.Equal(t, ans, streamed.String(), "the stream is the answer")
		assert.Positive(t, st.TTFT)
		assert.GreaterOrEqual(t, st.TTFT, st.Prefill)
		outs = append(outs, ans)
	}
	assert.Equal(t, outs[0], outs[1])
}

func TestMultiImageAndMultiTurn(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	s := session(t, p)
	ctx := context.Background()
	a, b := image(t, p, 6), image(t, p, 7)

	_, st, err := s.Ask(ctx, llava.Turn{Text: "Compare <image> with <image>.", Images: []*llava.Image{a, b}, Prune: llava.Options{Keep: 32}, Gen: greedy})
	require.NoError(t, err)
	require.Len(t, st.Images, 2)
	assert.Equal(t, 64, st.ImageTokens, "each image on its own budget")
	assert.Equal(t, "USER: Compare <image> with <image>. ASSISTANT:", st.Prompt)
	first := st.KVCells

	// A later turn adds its own image, encoded and pruned then; the cache
	// keeps the first turn.
	_, st2, err := s.Ask(ctx, llava.Turn{Text: "And this one?", Images: []*llava.Image{a}, Prune: llava.Options{Keep: 16}, Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, 16, st2.ImageTokens)
	assert.Equal(t, first+st2.TextTokens+16+st2.DecodeTokens, st2.KVCells)
	// The first answer stopped at the token limit, so the turn separator
	// (LLaVA's EOS) comes first.
	assert.True(t, strings.HasPrefix(st2.Prompt, "</s>USER: <image>\nAnd this one? ASSISTANT:"), st2.Prompt)

	s.Reset()
	assert.Zero(t, s.Positions())
	_, st3, err := s.Ask(ctx, llava.Turn{Text: "Hello", Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, st3.TextTokens+st3.DecodeTokens, st3.KVCells)

	_, _, err = s.Ask(ctx, llava.Turn{Text: "<image> and <image>", Images: []*llava.Image{a}, Gen: greedy})
	require.ErrorIs(t, err, llava.ErrOptions)
	assert.Contains(t, err.Error(), "2 <image> markers but 1 images")
}

// A model with a chat template gets its template; a later turn adds only
// what the template renders after what the cache already holds.
func TestChatTemplateTurns(t *testing.T) {
	lmSpec := testmodel.TinyLM()
	lmSpec.ChatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	lm, mm := fixture.Custom(t, "tiny-chatml", lmSpec, testmodel.TinyClip())
	p, err := llava.Open(context.Background(), llava.Config{Model: lm, MMProj: mm, Threads: 2})
	require.NoError(t, err)
	defer p.Close()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 2048})
	require.NoError(t, err)
	defer s.Close()
	img := &llava.Image{Name: "x", RGB: fixture.Image(t, 300, 300, 1)}
	ans, st, err := s.Ask(context.Background(), llava.Turn{Text: "Hi", Images: []*llava.Image{img}, Prune: llava.Options{Keep: 8}, Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, "<|im_start|>user\n<image>\nHi<|im_end|>\n<|im_start|>assistant\n", st.Prompt)
	_, st2, err := s.Ask(context.Background(), llava.Turn{Text: "More", Gen: greedy})
	require.NoError(t, err)
	assert.Equal(t, "<|im_end|>\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n", st2.Prompt, "answer was %q", ans)
}

func TestPipelineErrors(t *testing.T) {
	lm, _ := fixture.Pair(t, "tiny")
	ctx := context.Background()

	t.Run("text-only model given an image", func(t *testing.T) {
		p, err := llava.Open(ctx, llava.Config{Model: lm, Threads: 1})
		require.NoError(t, err)
		defer p.Close()
		s, err := p.NewSession(llava.SessionConfig{NCtx: 512})
		require.NoError(t, err)
		defer s.Close()
		_, _, err = s.Ask(ctx, llava.Turn{Text: "hi", Images: []*llava.Image{{Name: "a", RGB: fixture.Image(t, 10, 10, 1)}}, Gen: greedy})
		require.ErrorIs(t, err, llava.ErrNoVision)
	})
	t.Run("projector width mismatch", func(t *testing.T) {
		l, c := testmodel.TinyLM(), testmodel.TinyClip()
		l.NEmbd, c.ProjDim = 32, 32
		_, mm32 := fixture.Custom(t, "tiny-32", l, c)
		_, err := llava.Open(ctx, llava.Config{Model: lm, MMProj: mm32, Threads: 1})
		require.ErrorIs(t, err, llava.ErrMismatch)
		assert.Contains(t, err.Error(), "width 32")
		assert.Contains(t, err.Error(), "takes 64")
	})
	t.Run("missing files", func(t *testing.T) {
		_, err := llava.Open(ctx, llava.Config{Model: "/nonexistent/lm.gguf"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "/nonexistent/lm.gguf")
		_, err = llava.Open(ctx, llava.Config{Model: lm, MMProj: "/nonexistent/mm.gguf"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "/nonexistent/mm.gguf")
	})
	t.Run("bad options", func(t *testing.T) {
		p := open(t, bridge.LayoutCLSFirst)
		img := image(t, p, 1)
		for _, o := range []llava.Options{{Keep: -1}, {KeepRatio: 1.5}, {Keep: 3, KeepRatio: 0.5}, {Alpha: 2}, {ObjectLayer: 13}, {Method: "bogus"}} {
			_, err := p.PrepareImage(ctx, img, o)
			require.ErrorIs(t, err, llava.ErrOptions, "%+v", o)
		}
	})
	t.Run("context too small", func(t *testing.T) {
		p := open(t, bridge.LayoutCLSFirst)
		s, err := p.NewSession(llava.SessionConfig{NCtx: 256, Template: "llava"})
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{image(t, p, 1)}, Prune: llava.Options{Method: llava.MethodNone}})
		require.ErrorIs(t, err, bridge.ErrContextFull)
		assert.Zero(t, s.Positions(), "a failed turn leaves the cache as it was")
		// The same session still answers a turn that fits.
		_, _, err = s.Ask(ctx, llava.Turn{Text: question, Images: []*llava.Image{image(t, p, 1)}, Prune: llava.Options{Keep: 64}, Gen: greedy})
		require.NoError(t, err)
	})
	t.Run("cancelled", func(t *testing.T) {
		p := open(t, bridge.LayoutCLSFirst)
		s := session(t, p)
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		_, _, err := s.Ask(cctx, llava.Turn{Text: question, Gen: llava.GenOptions{MaxTokens: 100},
			OnToken: func(string) error {
				n++
				if n == 2 {
					cancel()
				}
				return nil
			}})
		require.True(t, errors.Is(err, context.Canceled), "%v", err)
		assert.Equal(t, 2, n, "generation stops at the next token")
	})
}

// Sessions sharing one pipeline can be used from several goroutines at
// once; each gets the answer it would get alone.
func TestConcurrentSessions(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	imgs := []*llava.Image{image(t, p, 11), image(t, p, 12), image(t, p, 13)}
	keeps := []int{16, 64, 576}
	want := make([]string, len(imgs))
	for i := range imgs {
		s := session(t, p)
		ans, _, err := s.Ask(context.Background(), llava.Turn{Text: question, Images: imgs[i : i+1], Prune: llava.Options{Keep: keeps[i], ObjectLayer: 3 + i}, Gen: greedy})
		require.NoError(t, err)
		want[i] = ans
	}
	got := make([]string, len(imgs))
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.NewSession(llava.SessionConfig{NCtx: 2048, Template: "llava"})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			got[i], _, errs[i] = s.Ask(context.Background(), llava.Turn{Text: question, Images: imgs[i : i+1], Prune: llava.Options{Keep: keeps[i], ObjectLayer: 3 + i}, Gen: greedy})
		}()
	}
	wg.Wait()
	for i := range imgs {
		require.NoError(t, errs[i])
		assert.Equal(t, want[i], got[i], "session %d", i)
	}
}

// One encoding serves several selections: Prune gives the same tokens and
// rows as PrepareImage, and a turn with a prepared image evaluates exactly
// what a turn with the raw image does (same logits, same answer).
func TestEncodeOncePruneMany(t *testing.T) {
	p := open(t, bridge.LayoutCLSFirst)
	ctx := context.Background()
	img := image(t, p, 4)
	enc, err := p.Encode(ctx, img, 0)
	require.NoError(t, err)
	defer enc.Release()
	assert.Equal(t, 576, enc.NTokens)
	for _, o := range []llava.Options{
		{Keep: 64}, {Method: llava.MethodUniform, Keep: 100}, {Method: llava.MethodNone}, {Keep: 64, Alpha: 0.4},
	} {
		want, err := p.PrepareImage(ctx, img, o)
		require.NoError(t, err)
		got, err := p.Prune(context.Background(), enc, o)
		require.NoError(t, err)
		assert.Equal(t, want.Kept, got.Kept, "%+v", o)
		assert.Equal(t, want.Embd, got.Embd, "%+v", o)

		s1, s2 := session(t, p), session(t, p)
		st1r, err := s1.Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prune: o, Gen: greedy})
		require.NoError(t, err)
		st1 := &st1r.Stats
		st2r, err := s2.Prefill(ctx, llava.Turn{Text: question, Prepared: []*llava.Pruned{got}, Prune: o, Gen: greedy})
		require.NoError(t, err)
		st2 := &st2r.Stats
		assert.Equal(t, st1.KVCells, st2.KVCells)
		assert.Equal(t, st1.Images[0].Kept, st2.Images[0].Kept)
		assert.Equal(t, s1.Context().Logits(), s2.Context().Logits(), "%+v", o)
		want.Release()
	}
	// the prepared rows stay valid after the encoding is released and
	// reused by other images
	pr, err := p.Prune(context.Background(), enc, llava.Options{Keep: 32})
	require.NoError(t, err)
	rows := append([]float32(nil), pr.Embd...)
	enc.Release()
	_, err = p.PrepareImage(ctx, image(t, p, 5), llava.Options{Keep: 32})
	require.NoError(t, err)
	assert.Equal(t, rows, pr.Embd)
	// a released encoding, a mismatched object layer and images given both
	// ways are refused
	_, err = p.Prune(context.Background(), enc, llava.Options{Keep: 32})
	require.ErrorIs(t, err, llava.ErrOptions)
	enc2, err := p.Encode(ctx, img, 5)
	require.NoError(t, err)
	defer enc2.Release()
	_, err = p.Prune(context.Background(), enc2, llava.Options{Keep: 32, ObjectLayer: 7})
	require.ErrorIs(t, err, llava.ErrOptions)
	_, err = session(t, p).Prefill(ctx, llava.Turn{Text: question, Images: []*llava.Image{img}, Prepared: []*llava.Pruned{pr}})
	require.ErrorIs(t, err, llava.ErrOptions)
}

// The pipeline runs the encoder's last step (the deep block's MLP and the
// projector) for the kept tokens only; the rows it gets are exactly the
// kept rows of the whole encoder's output, in both layouts.
func TestPrunedRowsAreWholeEncoderRows(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	ctx := context.Background()
	for _, layout := range []bridge.Layout{bridge.LayoutCLSFirst, bridge.LayoutLlamaCpp} {
		p := open(t, layout)
		require.True(t, p.Encoder().Info().Split)
		whole, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: layout, Threads: 2})
		require.NoError(t, err)
		defer whole.Close()
		img := image(t, p, 6)
		f, err := imageprep.Preprocess(img.RGB, p.ImageParams())
		require.NoError(t, err)
		want, err := whole.Encode(nil, f, bridge.EncodeOptions{Threads: 2})
		require.NoError(t, err)
		for _, o := range []llava.Options{{Keep: 64}, {Method: llava.MethodNone}, {Method: llava.MethodRandom, Keep: 7, Seed: 2}} {
			pr, err := p.PrepareImage(ctx, img, o)
			require.NoError(t, err)
			w := want.ProjDim
			require.Len(t, pr.Embd, len(pr.Kept)*w)
			for j, i := range pr.Kept {
				require.Equal(t, want.Row(i), pr.Embd[j*w:(j+1)*w], "%v %+v: token %d", layout, o, i)
			}
			pr.Release()
		}
	}
}
