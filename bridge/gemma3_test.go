package bridge_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/refvit"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// gemmaPrep preprocesses a sample picture for a Gemma 3 encoder as
// llama.cpp does.
func gemmaPrep(t *testing.T, in bridge.EncoderInfo, w, h int, seed uint64) *imageprep.Float {
	t.Helper()
	f, err := imageprep.PreprocessGemma3(fixture.Image(t, w, h, seed), imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
	require.NoError(t, err)
	return f
}

// Go's Gemma 3 preprocessing against clip_image_preprocess: letterboxed on
// black, bit for bit, on sizes that take each branch (the model size is
// copied; smaller, larger, landscape, portrait, one pixel).
func TestPreprocessGemma3MatchesLlamaCpp(t *testing.T) {
	for _, name := range []string{"tiny-gemma3", "tiny-gemma"} {
		t.Run(name, func(t *testing.T) {
			mm := gemmaMMProj(t, name)
			clip, err := bridge.OpenClip(mm, false, -1)
			require.NoError(t, err)
			defer clip.Close()
			enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2})
			require.NoError(t, err)
			in := enc.Info()
			enc.Close()
			s := in.ImageSize
			for i, sz := range [][2]int{{s, s}, {300, 200}, {200, 300}, {1, 1}, {s + 1, s - 1}, {2000, 1500}, {17, 1000}, {s / 2, s / 2}} {
				rgb := fixture.Image(t, sz[0], sz[1], uint64(i+1))
				views, err := clip.Preprocess(rgb)
				require.NoError(t, err)
				require.Len(t, views, 1)
				want := views[0]
				got := gemmaPrep(t, in, sz[0], sz[1], uint64(i+1))
				require.Equal(t, [2]int{want.W, want.H}, [2]int{got.W, got.H})
				diff := 0
				for j := range got.Pix {
					if got.Pix[j] != want.Pix[j] {
						diff++
					}
				}
				assert.Zero(t, diff, "%dx%d: %d of %d values differ", sz[0], sz[1], diff, len(got.Pix))
			}
		})
	}
}

// gemmaMMProj is the mmproj of a Gemma 3 pair: "tiny-gemma3" is
// fixture.Gemma3's (128 px, 16 px patches pooled 2x2), the others presets.
func gemmaMMProj(t *testing.T, name string) string {
	t.Helper()
	if name == "tiny-gemma3" {
		_, mm := fixture.Gemma3(t)
		return mm
	}
	_, mm := fixture.Pair(t, name)
	return mm
}

// Our Gemma 3 encoder against llama.cpp's clip on the same float image, at
// the CLIP encoder's tolerances: the 128 px tiny file pooled 2x2, Gemma 3's
// geometry (896 px, 64x64 patches pooled 4x4 to 16x16 tokens) at width 64,
// and SigLIP-So400m's widths (1152, 16 heads of 72, FFN 4304) in F16 at
// 224 px; flash attention off and on both sides.
func TestGemma3EncoderMatchesLlamaCppClip(t *testing.T) {
	type mode struct {
		enc  bridge.FlashMode
		clip int
	}
	off, auto := mode{bridge.FlashOff, 0}, mode{bridge.FlashAuto, -1}
	cases := []struct {
		name       string
		tol        float64
		merge, tok int // pooling side, token grid side
		modes      []mode
		sizes      [][2]int
	}{
		{"tiny-gemma3", 1e-3, 2, 4, []mode{off, auto}, [][2]int{{300, 200}, {128, 128}}},
		{"tiny-gemma", 1e-3, 4, 16, []mode{off, auto}, [][2]int{{300, 200}}},
		{"mid-gemma", 5e-3, 4, 4, []mode{off, auto}, [][2]int{{300, 200}, {224, 224}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "mid-gemma" {
				emulator.Skip(t, "SigLIP's widths in f16 take over 8 minutes an encode pair under qemu (4 pairs, 2 probes); the tiny cases run the same graph")
			}
			mm := gemmaMMProj(t, tc.name)
			for _, fa := range tc.modes {
				clip, err := bridge.OpenClip(mm, false, fa.clip)
				require.NoError(t, err)
				enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, FlashAttn: fa.enc})
				require.NoError(t, err)
				in := enc.Info()
				require.Equal(t, clip.NEmbd(), in.ProjDim)
				assert.Equal(t, "gemma3", in.Projector)
				assert.False(t, in.Dynamic)
				assert.False(t, in.HasCLS)
				assert.Equal(t, tc.merge, in.Merge)
				assert.Equal(t, [3]int{tc.tok, tc.tok, tc.tok * tc.tok}, [3]int{in.GridW, in.GridH, in.NPatches})
				assert.Equal(t, in.NBlock, in.NRun, "every block")
				assert.Equal(t, min(hiprune.DefaultObjectLayerSigLIP, in.NRun), in.ObjectLayer)
				for i, sz := range tc.sizes {
					img := gemmaPrep(t, in, sz[0], sz[1], uint64(i+1))
					want, err := clip.Encode(img, 2)
					require.NoError(t, err)
					got, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2})
					require.NoError(t, err)
					require.Equal(t, clip.NTokens(img.W, img.H), got.GridW*got.GridH)
					assert.Equal(t, [4]int{tc.tok, tc.tok, tc.tok * tc.merge, tc.tok * tc.merge},
						[4]int{got.GridW, got.GridH, got.PatchW, got.PatchH})
					e := relErr(t, got.Embd, want)
					t.Logf("flash=%v %dx%d: embeddings max rel err %.2e", in.FlashAttn, sz[0], sz[1], e)
					assert.LessOrEqual(t, e, tc.tol)
					if i == 0 {
						// Probing another block adds a side branch only.
						w, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2, ObjectLayer: 1})
						require.NoError(t, err)
						assert.Equal(t, got.Embd, w.Embd)
						assert.NotEqual(t, got.PatchObject, w.PatchObject)
						assert.Equal(t, got.PatchDeep, w.PatchDeep)
					}
				}
				enc.Close()
				clip.Close()
			}
		})
	}
}

// The per-patch scores and the embeddings against a plain Go forward pass
// written from SigLIP's and Gemma 3's definitions (tests/refvit), on the
// 128 px file (4 heads, pooled 2x2; the object layer at each block) and on
// Gemma 3's geometry (64x64 patches pooled 4x4; object layer 1, deep layer
// 2). Past the first block the 4,096-patch tower is looser: ggml's GELU
// goes through a float16 table, which the reference mirrors, and float32
// differences flip some of its 4,096 x 128 roundings by one f16 step.
func TestGemma3ScoresMatchReferenceForward(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers []int
		tol    float64
	}{{"tiny-gemma3", []int{1, 2}, 1e-4}, {"tiny-gemma", []int{1}, 5e-4}} {
		t.Run(tc.name, func(t *testing.T) {
			mm := gemmaMMProj(t, tc.name)
			ref, err := refvit.LoadSigLIP(mm)
			require.NoError(t, err)
			enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, FlashAttn: bridge.FlashOff})
			require.NoError(t, err)
			defer enc.Close()
			in := enc.Info()
			img := gemmaPrep(t, in, 300, 200, 4)
			for _, layer := range tc.layers {
				want, err := ref.Forward(img.Pix, layer)
				require.NoError(t, err)
				got, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2, ObjectLayer: layer})
				require.NoError(t, err)
				require.Equal(t, [4]int{want.GridW, want.GridH, want.PatchW, want.PatchH}, [4]int{got.GridW, got.GridH, got.PatchW, got.PatchH})
				for _, sc := range []struct {
					name string
					got  []float32
					want []float64
				}{{"object", got.PatchObject, want.Object}, {"deep", got.PatchDeep, want.Deep}} {
					require.Len(t, sc.got, len(sc.want))
					worst := 0.0
					for j := range sc.got {
						worst = math.Max(worst, math.Abs(float64(sc.got[j])-sc.want[j])/math.Abs(sc.want[j]))
					}
					t.Logf("object layer %d: %s scores max rel err %.2e", layer, sc.name, worst)
					assert.LessOrEqual(t, worst, tc.tol, "%s scores", sc.name)
				}
				e := relErr(t, got.Embd, flatten(want.Embd))
				t.Logf("object layer %d: embeddings max rel err vs reference %.2e", layer, e)
				assert.LessOrEqual(t, e, 1e-3)
			}
		})
	}
}

// The probed attention is a distribution over the patches (each query row
// sums to one, averaged over rows and heads); with 4 MiB probe chunks the
// 4,096 patches' column sums come from 64 chunks of 64 query rows and give
// the same scores, and the token scores are the means of their 4x4
// patches.
func TestGemma3Scores(t *testing.T) {
	mm := gemmaMMProj(t, "tiny-gemma")
	// Flash attention off: the scores do not depend on it.
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, FlashAttn: bridge.FlashOff})
	require.NoError(t, err)
	defer enc.Close()
	chunked, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, FlashAttn: bridge.FlashOff, ProbeChunkBytes: 4 << 20})
	require.NoError(t, err)
	defer chunked.Close()
	in := enc.Info()
	img := gemmaPrep(t, in, 640, 480, 5)
	whole, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2, ObjectLayer: 1})
	require.NoError(t, err)
	got, err := chunked.Encode(nil, img, bridge.EncodeOptions{Threads: 2, ObjectLayer: 1})
	require.NoError(t, err)
	assert.Equal(t, whole.Embd, got.Embd, "chunking touches the scores only")
	assert.InDeltaSlice(t, whole.PatchObject, got.PatchObject, 1e-8, "1/4096 on average: float rounding of another summation order")
	assert.InDeltaSlice(t, whole.PatchDeep, got.PatchDeep, 1e-8)
	require.Len(t, got.PatchObject, 64*64)
	for _, s := range [][]float32{got.PatchObject, got.PatchDeep} {
		total := 0.0
		for _, v := range s {
			require.Greater(t, v, float32(0))
			total += float64(v)
		}
		assert.InDelta(t, 1, total, 1e-4)
	}
	for _, sc := range []struct{ patch, tok []float32 }{{got.PatchObject, got.Object}, {got.PatchDeep, got.Deep}} {
		require.Len(t, sc.tok, 16*16)
		for ty := 0; ty < 16; ty++ {
			for tx := 0; tx < 16; tx++ {
				sum := 0.0
				for dy := 0; dy < 4; dy++ {
					for dx := 0; dx < 4; dx++ {
						sum += float64(sc.patch[(4*ty+dy)*64+4*tx+dx])
					}
				}
				assert.InDelta(t, sum/16, float64(sc.tok[ty*16+tx]), 1e-9, "token (%d,%d)", tx, ty)
			}
		}
	}
	// Different blocks attend differently: the check above can fail.
	assert.Greater(t, maxAbsDiff(got.PatchObject, got.PatchDeep), 1e-6)
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// The LM side of a Gemma 3 image: mtmd wraps it in <start_of_image> ...
// <end_of_image> and decodes its 256 tokens in one batch with causal
// attention off. The same embeddings (ours, identical to clip's) decoded
// that way give mtmd's logits, and decoded causally do not; a pruned image
// keeps its tokens at consecutive positions, the text after it following
// on, and its cells are the text's and the kept tokens'. A batch smaller
// than the image splits it as mtmd does.
func TestGemma3NonCausalImageTokens(t *testing.T) {
	lm, mm := fixture.Pair(t, "tiny-gemma")
	m, err := bridge.LoadModel(lm, bridge.ModelParams{})
	require.NoError(t, err)
	defer m.Close()
	x, err := bridge.OpenMtmd(mm, m, bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer x.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, FlashAttn: bridge.FlashOff})
	require.NoError(t, err)
	defer enc.Close()
	newCtx := func(p bridge.ContextParams) *bridge.Context {
		p.NCtx, p.Threads = 1024, 2
		ctx, err := bridge.NewContext(m, p)
		require.NoError(t, err)
		t.Cleanup(ctx.Close)
		return ctx
	}

	rgb := fixture.Image(t, 300, 200, 9)
	ch, err := x.Tokenize("<start_of_turn>user\n"+bridge.MtmdMarker()+"What is it?<end_of_turn>\n<start_of_turn>model\n",
		[]*imageprep.RGB{rgb}, true)
	require.NoError(t, err)
	defer ch.Free()
	require.Equal(t, 3, ch.Len())
	require.True(t, ch.IsImage(1))
	require.Equal(t, 256, ch.NTokens(1))
	before, after := ch.Tokens(0), ch.Tokens(2)
	assert.Equal(t, m.BOS(), before[0])
	assert.Equal(t, "<start_of_image>", m.TokenText(before[len(before)-1]), "one control token")
	assert.Equal(t, "<end_of_image>", m.TokenText(after[0]))

	ref := newCtx(bridge.ContextParams{})
	nRef, _, err := x.Eval(ref, ch, 0, true)
	require.NoError(t, err)
	refLogits := ref.Logits()

	// mtmd's own embeddings isolate the LM side: its clip runs flash
	// attention, which on this random tower moves the embeddings by a few
	// percent from the exact softmax (our encoder matches clip in either
	// mode, TestGemma3EncoderMatchesLlamaCppClip).
	mtmdEmbd, k, err := x.EncodeImage(rgb)
	require.NoError(t, err)
	require.Equal(t, 256, k)
	img := gemmaPrep(t, enc.Info(), 300, 200, 9)
	e, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2})
	require.NoError(t, err)
	require.Len(t, e.Embd, 256*m.NEmbd())
	t.Logf("our embeddings (flash off) against mtmd's (flash on): max rel err %.2e", relErr(t, e.Embd, mtmdEmbd))
	nb := len(before)
	eval := func(ctx *bridge.Context, rows []float32, causal bool) int {
		require.NoError(t, ctx.DecodeTokens(before, 0, false))
		k := len(rows) / m.NEmbd()
		if causal {
			require.NoError(t, ctx.DecodeEmbeddings(rows, nb, false))
		} else {
			require.NoError(t, ctx.DecodeEmbeddingsNonCausal(rows, nb))
		}
		require.NoError(t, ctx.DecodeTokens(after, nb+k, true))
		return nb + k + len(after)
	}
	full := newCtx(bridge.ContextParams{})
	assert.Equal(t, nRef, eval(full, mtmdEmbd, false))
	le := relErr(t, full.Logits(), refLogits)
	t.Logf("full image, non-causal: logits max rel err %.2e against mtmd", le)
	assert.LessOrEqual(t, le, 1e-5)
	causal := newCtx(bridge.ContextParams{})
	eval(causal, mtmdEmbd, true)
	ce := relErr(t, causal.Logits(), refLogits)
	t.Logf("full image, causal: logits max rel err %.2e against mtmd", ce)
	assert.Greater(t, ce, 1e-3, "causal attention among the image tokens is not what mtmd does")

	budget, err := hiprune.RetainBudget(256, hiprune.DefaultRetentionGemma3)
	require.NoError(t, err)
	keep, err := hiprune.Select(e.Object, e.Deep, e.GridW, e.GridH, hiprune.Config{Budget: budget, Alpha: hiprune.DefaultAlpha})
	require.NoError(t, err)
	require.Len(t, keep, 85)
	var rows []float32
	for _, i := range keep {
		rows = append(rows, e.Row(i)...)
	}
	pruned := newCtx(bridge.ContextParams{})
	next := eval(pruned, rows, false)
	assert.Equal(t, nb+85+len(after), next)
	assert.Equal(t, next, pruned.KVCells(), "the text and the kept tokens")
	kv, err := pruned.ReadKV()
	require.NoError(t, err)
	for c := range kv.Pos {
		require.Equal(t, c, kv.Pos[c], "cell %d: consecutive positions", c)
	}
	for _, v := range pruned.Logits() {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}

	// With a batch smaller than the image mtmd decodes it in batches, each
	// non-causal within itself, and so does DecodeEmbeddingsNonCausal.
	refSmall := newCtx(bridge.ContextParams{NBatch: 64})
	_, _, err = x.Eval(refSmall, ch, 0, true)
	require.NoError(t, err)
	split := newCtx(bridge.ContextParams{NBatch: 64})
	eval(split, mtmdEmbd, false)
	se := relErr(t, split.Logits(), refSmall.Logits())
	t.Logf("full image in batches of 64: logits max rel err %.2e against mtmd's", se)
	assert.LessOrEqual(t, se, 1e-5)
	assert.Greater(t, relErr(t, split.Logits(), refLogits), 1e-3, "batches of 64 see less than one batch of 256")

	// A batch larger than the micro-batch would abort llama.cpp: refused.
	small := newCtx(bridge.ContextParams{NBatch: 512, NUBatch: 64})
	require.NoError(t, small.DecodeTokens(before, 0, false))
	err = small.DecodeEmbeddingsNonCausal(rows, nb)
	assert.ErrorIs(t, err, bridge.ErrArg)
	assert.ErrorContains(t, err, "a non-causal batch of 85 embeddings must fit the context's 64-token micro-batch")
	assert.ErrorIs(t, small.DecodeEmbeddingsNonCausal(rows[:5], nb), bridge.ErrArg)
	require.NoError(t, small.DecodeEmbeddingsNonCausal(rows[:64*m.NEmbd()], nb))
}

func TestGemma3EncoderErrors(t *testing.T) {
	mm := gemmaMMProj(t, "tiny-gemma3")
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2})
	require.NoError(t, err)
	defer enc.Close()
	in := enc.Info()
	good := gemmaPrep(t, in, 100, 80, 1)
	a, err := enc.Encode(nil, good, bridge.EncodeOptions{})
	require.NoError(t, err)
	for _, bad := range []*imageprep.Float{
		{W: 112, H: 112, Pix: make([]float32, 112*112*3)}, // not the model size
		{W: 128, H: 64, Pix: make([]float32, 128*64*3)},
		{W: 128, H: 128, Pix: make([]float32, 5)},
	} {
		_, err := enc.Encode(nil, bad, bridge.EncodeOptions{})
		assert.ErrorIs(t, err, bridge.ErrArg, "%dx%d", bad.W, bad.H)
	}
	_, err = enc.Encode(nil, good, bridge.EncodeOptions{ObjectLayer: 3})
	assert.ErrorIs(t, err, bridge.ErrArg)
	assert.ErrorContains(t, err, "object layer 3 is out of range: the encoder runs 2 blocks")
	b, err := enc.Encode(a, good, bridge.EncodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, a.Embd, b.Embd, "the encoder is unchanged by the failures")

	// The default object layer on a tower as deep as So400m's.
	dir := t.TempDir()
	deep := testmodel.TinyGemma3()
	deep.NLayer = 27
	deepPath := filepath.Join(dir, "deep.gguf")
	require.NoError(t, testmodel.WriteMMProj(deepPath, deep))
	d, err := bridge.OpenEncoder(deepPath, bridge.EncoderParams{Threads: 2})
	require.NoError(t, err)
	assert.Equal(t, hiprune.DefaultObjectLayerSigLIP, d.Info().ObjectLayer)
	assert.Equal(t, 27, d.Info().NRun)
	d.Close()

	for _, tc := range []struct {
		name string
		edit fixture.Edit
		kind error
		want string
	}{
		{"scale factor", fixture.Edit{Set: map[string]any{"clip.vision.projector.scale_factor": uint32(3)}}, bridge.ErrFormat,
			"scale_factor 3 must divide the 8-patch grid side"},
		{"soft norm", fixture.Edit{Drop: []string{"mm.soft_emb_norm.weight"}}, bridge.ErrFormat, "missing tensor mm.soft_emb_norm.weight"},
		{"projection", fixture.Edit{Reshape: map[string][]int64{"mm.input_projection.weight": {64, 32}}}, bridge.ErrFormat,
			"tensor mm.input_projection.weight has shape"},
		{"positions", fixture.Edit{Reshape: map[string][]int64{"v.position_embd.weight": {64, 65}}}, bridge.ErrFormat,
			"tensor v.position_embd.weight has shape"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bridge.OpenEncoder(fixture.Mutate(t, mm, dir, tc.name+".gguf", tc.edit), bridge.EncoderParams{})
			assert.ErrorIs(t, err, tc.kind)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
