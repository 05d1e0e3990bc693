package bridge_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/refvit"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// relErr is max|a-b| over the tensor divided by max|b|: the error relative
// to the tensor's scale (element-wise ratios blow up near zero).
func relErr(t *testing.T, a, b []float32) float64 {
	t.Helper()
	require.Equal(t, len(b), len(a))
	var num, den float64
	for i := range a {
		require.False(t, math.IsNaN(float64(a[i])) || math.IsInf(float64(a[i]), 0), "non-finite value at %d", i)
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	require.Greater(t, den, 0.0)
	return num / den
}

func preprocessed(t *testing.T, clip *bridge.Clip, w, h int, seed uint64) *imageprep.Float {
	t.Helper()
	f, err := clip.Preprocess(fixture.Image(t, w, h, seed))
	require.NoError(t, err)
	require.Len(t, f, 1, "LLaVA-1.5: one view")
	return f[0]
}

// encode runs enc with its defaults and two threads.
func encode(t *testing.T, enc *bridge.Encoder, img *imageprep.Float) *bridge.Encoding {
	t.Helper()
	got, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: 2})
	require.NoError(t, err)
	return got
}

// Our encoder in llama.cpp's token layout against llama.cpp's own clip on
// the identical float image, with flash attention on and off in both (the
// tiny case), and as "auto" resolves it: off for CLIP on the CPU, where
// ggml's flash-attention kernel is the slower one.
func TestEncoderMatchesLlamaCppClip(t *testing.T) {
	cases := []struct {
		preset string
		tol    float64
		modes  []bridge.FlashMode
	}{
		{"tiny", 1e-3, []bridge.FlashMode{bridge.FlashAuto, bridge.FlashOn}}, // f32 weights
		{"mid", 5e-3, []bridge.FlashMode{bridge.FlashAuto}},                  // CLIP-L widths, f16 weights
	}
	for _, tc := range cases {
		t.Run(tc.preset, func(t *testing.T) {
			if tc.preset == "mid" {
				emulator.Skip(t, "CLIP-L widths in f16 (4 encodes of 577 tokens) take over 30 minutes under qemu, whose fp16 arithmetic is software; the tiny case runs the same graph")
			}
			_, mm := fixture.Pair(t, tc.preset)
			for _, fa := range tc.modes {
				enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1, FlashAttn: fa})
				require.NoError(t, err)
				in := enc.Info()
				if fa == bridge.FlashAuto {
					assert.False(t, in.FlashAttn, "auto on the CPU: plain attention for CLIP")
				}
				clipFA := 0
				if in.FlashAttn {
					clipFA = 1
				}
				clip, err := bridge.OpenClip(mm, false, clipFA)
				require.NoError(t, err)
				require.Equal(t, clip.NEmbd(), in.ProjDim)
				require.Equal(t, clip.NTokens(in.ImageSize, in.ImageSize), in.NPatches)
				for seed := uint64(1); seed <= 2; seed++ {
					img := preprocessed(t, clip, 500, 375, seed)
					want, err := clip.Encode(img, 2)
					require.NoError(t, err)
					got := encode(t, enc, img)
					e := relErr(t, got.Embd, want)
					t.Logf("%s seed %d: embeddings max rel err %.2e (flash attention %v in both)", tc.preset, seed, e, in.FlashAttn)
					assert.LessOrEqual(t, e, tc.tol)
				}
				clip.Close()
				enc.Close()
			}
		})
	}
}

// clipFile is an mmproj as one of llama.cpp's converters writes it for a
// LLaVA whose original (unconverted) CLIP had origBlocks blocks and whose
// config selects hidden_states[selectLayer].
type clipFile struct {
	name         string
	path         string
	origBlocks   int
	selectLayer  int // HF hidden_states index (negative: from the end)
	blockCount   int // clip.vision.block_count
	featureLayer int // clip.vision.feature_layer, 0 = no key
}

// referenceFiles writes the kinds of LLaVA mmproj files the converters
// produce (see family_llava.cpp), all with the tiny model's weights and SiLU.
//
// The tiny model is switched to SiLU here: ggml computes GELU and quick GELU
// through float16 lookup tables, so a float32 hidden value on the other side
// of an f16 rounding boundary than the float64 reference's moves by an f16
// ulp and the checked difference would be that table's, not the scores'.
func referenceFiles(t *testing.T) []clipFile {
	dir := t.TempDir()
	silu := fixture.Edit{Set: map[string]any{"clip.use_silu": true}}
	_, tiny := fixture.Pair(t, "tiny")
	c := testmodel.TinyClip()
	// legacy converter without a select layer in the config (every 2023-era
	// file): layers.pop(-1) keeps 12 of a 13-block CLIP, no feature_layer
	legacy := fixture.Mutate(t, tiny, dir, "legacy.gguf", silu)
	// current legacy converter, config mm_vision_select_layer -2 on the same
	// 13-block CLIP: feature_layer [13 + (-2) + 1] = [12], layers[:12]
	spec := c
	spec.FeatureLayer = 12
	keyed := filepath.Join(dir, "keyed-src.gguf")
	require.NoError(t, testmodel.WriteMMProj(keyed, spec))
	keyed = fixture.Mutate(t, keyed, dir, "keyed.gguf", silu)
	// a file no converter writes: feature_layer [10] under 12 stored blocks
	// (hidden_states[10] is still the output of block 10)
	edit := fixture.Edit{Set: map[string]any{"clip.use_silu": true, "clip.vision.feature_layer": []int32{10}}}
	short := fixture.Mutate(t, tiny, dir, "short.gguf", edit)
	return []clipFile{
		{"legacy, no feature_layer", legacy, 13, refvit.LLaVA15SelectLayer, c.NLayer, 0},
		{"feature_layer [12]", keyed, 13, refvit.LLaVA15SelectLayer, c.NLayer, 12},
		{"feature_layer [10] of 12 blocks", short, 13, 10, c.NLayer, 10},
	}
}

// llamaCppDepth is what the pinned llama.cpp's llava graph runs
// (tools/mtmd/models/llava.cpp): the deepest feature layer when the key is
// set, else n_layer - 1. The reference in this depth is checked against
// llama.cpp's clip below.
func llamaCppDepth(f clipFile) int {
	if f.featureLayer > 0 {
		return f.featureLayer
	}
	return f.blockCount - 1
}

// The attention scores and the embeddings against a plain Go forward pass
// that materialises every attention matrix, in both token layouts, on every
// kind of converted file. The reference's depth comes from Hugging Face's
// indexing of the original model (hidden_states[-2] for LLaVA-1.5) in the
// default layout, and from llama.cpp's graph in llama.cpp's; the reference
// in llama.cpp's layout is itself checked against llama.cpp's clip, so the
// CLS-first path is tied to llama.cpp's arithmetic too.
func TestEncoderMatchesReferenceForward(t *testing.T) {
	files := emulator.Cases(t, referenceFiles(t), func(f clipFile) bool { return f.featureLayer == 0 },
		"the other files differ in their depth keys only, a rule TestEncoderDepth checks; each file costs 8 encodes and 2 reference forwards, over 15 minutes under qemu")
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			ref, err := refvit.Load(f.path)
			require.NoError(t, err)
			clip, err := bridge.OpenClip(f.path, false, -1)
			require.NoError(t, err)
			defer clip.Close()
			img := preprocessed(t, clip, 400, 300, 7)
			hfDepth, err := refvit.HiddenState(f.selectLayer, f.origBlocks)
			require.NoError(t, err)
			depth := map[bridge.Layout]int{bridge.LayoutCLSFirst: hfDepth, bridge.LayoutLlamaCpp: llamaCppDepth(f)}
			refs := map[bridge.Layout]*refvit.Output{}

			for _, layout := range []bridge.Layout{bridge.LayoutCLSFirst, bridge.LayoutLlamaCpp} {
				want, err := ref.Forward(img.Pix, refvit.Layout(layout), 9, depth[layout])
				require.NoError(t, err)
				refs[layout] = want
				for _, fa := range []bridge.FlashMode{bridge.FlashOff, bridge.FlashOn} {
					enc, err := bridge.OpenEncoder(f.path, bridge.EncoderParams{Layout: layout, Threads: 2, FlashAttn: fa})
					require.NoError(t, err)
					in := enc.Info()
					require.Equal(t, 9, in.ObjectLayer)
					require.Equal(t, f.blockCount, in.NBlock)
					require.Equal(t, depth[layout], in.NRun, "%s: blocks run", layout)
					got := encode(t, enc, img)
					enc.Close()

					for _, sc := range []struct {
						name string
						got  []float32
						want []float64
					}{{"object", got.Object, want.Object}, {"deep", got.Deep, want.Deep}} {
						require.Len(t, sc.got, 576)
						worst := 0.0
						for i := range sc.got {
							r := math.Abs(float64(sc.got[i])-sc.want[i]) / math.Abs(sc.want[i])
							worst = math.Max(worst, r)
						}
						t.Logf("%s flash=%v: %s scores max rel err %.2e", layout, in.FlashAttn, sc.name, worst)
						// With flash attention every earlier layer sees K and V
						// rounded to f16 (as in llama.cpp's clip), which the f64
						// reference does not mimic; the score arithmetic itself is
						// checked at full precision with it off.
						tol := exactTol()
						if in.FlashAttn {
							tol = 2e-2
						}
						assert.LessOrEqual(t, worst, tol, "%s scores", sc.name)
					}
					e := relErr(t, got.Embd, flatten(want.Embd))
					t.Logf("%s flash=%v: embeddings max rel err vs reference %.2e", layout, in.FlashAttn, e)
					if in.FlashAttn {
						assert.LessOrEqual(t, e, 2e-2)
					} else {
						assert.LessOrEqual(t, e, math.Max(1e-3, exactTol()))
					}
				}
			}

			// The reference in llama.cpp's layout and depth reproduces
			// llama.cpp's clip (run without flash attention, the reference's
			// arithmetic).
			clipNoFA, err := bridge.OpenClip(f.path, false, 0)
			require.NoError(t, err)
			defer clipNoFA.Close()
			want, err := clipNoFA.Encode(img, 2)
			require.NoError(t, err)
			assert.LessOrEqual(t, relErr(t, flatten(refs[bridge.LayoutLlamaCpp].Embd), want), 1e-3, "reference vs llama.cpp clip")
			// And the two layouts really differ (llama.cpp issue 25814).
			c, r := refs[bridge.LayoutCLSFirst], refs[bridge.LayoutLlamaCpp]
			assert.Greater(t, math.Abs(c.Embd[0][0]-r.Embd[0][0])+math.Abs(c.Embd[100][3]-r.Embd[100][3]), 1e-4)
		})
	}
}

// exactTol bounds f32-weight arithmetic against the f64 reference. The
// tiny files store the patch embedding in f16, and on arm64 with the fp16
// extension (make cross-test's -march, every Apple chip) ggml's f16 dot
// product accumulates in f16 (vfmaq_f16 in simd-mappings.h), where x86
// widens to f32 first; llama.cpp's clip shares that, and measured 6e-4 to
// 7e-4 there under qemu.
func exactTol() float64 {
	if runtime.GOARCH == "arm64" {
		return 2e-3
	}
	return 1e-4
}

func flatten(rows [][]float64) []float32 {
	out := make([]float32, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		for _, v := range r {
			out = append(out, float32(v))
		}
	}
	return out
}

// The depth each layout runs, on files as the converters write them for
// CLIP-L (23 stored blocks) and on short stacks: without feature_layer the
// default layout runs every stored block and llama.cpp's one fewer; with
// feature_layer [L] both run L. The deep layer is the last block run (probing
// it as the object layer gives the deep scores), and every block up to it
// can be the object layer.
func TestEncoderDepth(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, nLayer, featureLayer int) string {
		c := testmodel.TinyClip()
		c.NLayer, c.FeatureLayer = nLayer, featureLayer
		p := filepath.Join(dir, name)
		require.NoError(t, testmodel.WriteMMProj(p, c))
		return p
	}
	type depthCase struct {
		name             string
		path             string
		nBlock           int
		clsFirst, llama  int
		defaultObjLayers [2]int
	}
	cases := []depthCase{
		{"CLIP-L legacy, 23 blocks, no key", write("l23.gguf", 23, 0), 23, 23, 22, [2]int{9, 9}},
		{"CLIP-L, feature_layer [23]", write("k23.gguf", 23, 23), 23, 23, 23, [2]int{9, 9}},
		{"2 blocks, no key", write("l2.gguf", 2, 0), 2, 2, 1, [2]int{2, 1}},
		{"4 blocks, feature_layer [3]", write("k3.gguf", 4, 3), 4, 3, 3, [2]int{3, 3}},
	}
	rgb := fixture.Image(t, 336, 336, 5)
	cases = emulator.Cases(t, cases, func(c depthCase) bool { return c.nBlock < 23 },
		"the depth rules are the host's arithmetic on the file's keys, the same for 4 blocks as for 23, and 23 blocks of 577 tokens take many minutes under qemu")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, layout := range []bridge.Layout{bridge.LayoutCLSFirst, bridge.LayoutLlamaCpp} {
				want := []int{tc.clsFirst, tc.llama}[i]
				enc, err := bridge.OpenEncoder(tc.path, bridge.EncoderParams{Layout: layout, Threads: 2})
				require.NoError(t, err)
				in := enc.Info()
				assert.Equal(t, tc.nBlock, in.NBlock)
				assert.Equal(t, want, in.NRun, "%s: blocks run", layout)
				assert.Equal(t, tc.defaultObjLayers[i], in.ObjectLayer, "%s: default object layer min(9, depth)", layout)
				f, err := imageprep.Preprocess(rgb, imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
				require.NoError(t, err)
				b, err := enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: want})
				require.NoError(t, err)
				assert.Equal(t, want, b.ObjectLayer)
				assert.Equal(t, b.Deep, b.Object, "%s: object layer %d is the deep layer", layout, want)
				if layout == bridge.LayoutCLSFirst {
					a, err := enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: 1})
					require.NoError(t, err)
					assert.Equal(t, 1, a.ObjectLayer)
					assert.Equal(t, a.Deep, b.Deep, "the deep layer does not move with the object layer")
					assert.Equal(t, a.Embd, b.Embd)
					if want > 1 {
						assert.NotEqual(t, a.Object, b.Object)
					}
				}
				_, err = enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: want + 1})
				require.ErrorIs(t, err, bridge.ErrArg)
				assert.Contains(t, err.Error(), fmt.Sprintf("the encoder runs %d blocks (1..%d)", want, want))
				enc.Close()
			}
		})
	}
}

// The scores are the column means of the attention, CLS column dropped:
// they are a distribution over tokens, so they sum to about 1 minus the
// CLS column's share, and every value is positive.
func TestEncoderScoresAreAttentionMass(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2})
	require.NoError(t, err)
	defer enc.Close()
	in := enc.Info()
	rgb := fixture.Image(t, 336, 336, 3)
	f, err := imageprep.Preprocess(rgb, imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
	require.NoError(t, err)
	a, err := enc.Encode(nil, f, bridge.EncodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, 9, a.ObjectLayer, "the default object layer")
	b, err := enc.Encode(nil, f, bridge.EncodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, a, b, "re-running the allocated graph gives the same output")
	one, err := enc.Encode(nil, f, bridge.EncodeOptions{Threads: 1})
	require.NoError(t, err)
	assert.LessOrEqual(t, relErr(t, one.Embd, a.Embd), 1e-3, "another thread count only reorders sums")
	for _, s := range [][]float32{a.Object, a.Deep} {
		sum := 0.0
		for _, v := range s {
			require.Greater(t, v, float32(0))
			sum += float64(v)
		}
		assert.Greater(t, sum, 0.5)
		assert.Less(t, sum, 1.0)
	}
	assert.NotEqual(t, a.Object, a.Deep, "object and deep layers differ")

	// Another object layer changes the object scores only, and 0 goes back
	// to the default given at open.
	c, err := enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, c.ObjectLayer)
	assert.NotEqual(t, a.Object, c.Object)
	assert.Equal(t, a.Deep, c.Deep)
	assert.Equal(t, a.Embd, c.Embd)
	_, err = enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: 13})
	require.ErrorIs(t, err, bridge.ErrArg)
	assert.Contains(t, err.Error(), "object layer 13")
	_, err = enc.Encode(nil, f, bridge.EncodeOptions{ObjectLayer: -1})
	require.ErrorIs(t, err, bridge.ErrArg)
	d, err := enc.Encode(nil, f, bridge.EncodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, a, d, "a failed change leaves the encoder as it was; 0 is the default again")
	assert.Equal(t, 9, enc.Info().ObjectLayer)

	// The default is the layer given at open.
	enc3, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, ObjectLayer: 3})
	require.NoError(t, err)
	defer enc3.Close()
	e, err := enc3.Encode(nil, f, bridge.EncodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3, e.ObjectLayer)
	assert.Equal(t, c.Object, e.Object)
}

// Preprocessing in Go against clip_image_preprocess on images of several
// sizes and aspect ratios.
func TestPreprocessMatchesLlamaCpp(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	clip, err := bridge.OpenClip(mm, false, -1)
	require.NoError(t, err)
	defer clip.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 1})
	require.NoError(t, err)
	in := enc.Info()
	enc.Close()
	p := imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std}
	sizes := [][2]int{{336, 336}, {640, 480}, {480, 640}, {200, 500}, {1000, 100}, {17, 33}, {1, 1}, {337, 335}, {1024, 1024}}
	for i, sz := range sizes {
		rgb := fixture.Image(t, sz[0], sz[1], uint64(i+1))
		views, err := clip.Preprocess(rgb)
		require.NoError(t, err)
		require.Len(t, views, 1)
		wantF := views[0]
		want := wantF.Pix
		got, err := imageprep.Preprocess(rgb, p)
		require.NoError(t, err)
		require.Equal(t, [2]int{wantF.W, wantF.H}, [2]int{got.W, got.H}, "size for %dx%d", sz[0], sz[1])
		var mad [3]float64
		for j := range got.Pix {
			c := j % 3
			// back to 0..1 pixel units
			mad[c] += math.Abs(float64(got.Pix[j]-want[j])) * float64(in.Std[c])
		}
		for c := range mad {
			mad[c] /= float64(len(got.Pix) / 3)
			assert.LessOrEqual(t, mad[c], 1.0/255, "%dx%d channel %d", sz[0], sz[1], c)
		}
		t.Logf("%dx%d: mean abs diff per channel %.2e %.2e %.2e", sz[0], sz[1], mad[0], mad[1], mad[2])
	}
}

func TestEncoderErrors(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	dir := t.TempDir()

	t.Run("object layer past the depth", func(t *testing.T) {
		_, err := bridge.OpenEncoder(mm, bridge.EncoderParams{ObjectLayer: 13})
		require.ErrorIs(t, err, bridge.ErrArg)
		assert.Contains(t, err.Error(), "object layer 13 is out of range")
		assert.Contains(t, err.Error(), "12 blocks")
		_, err = bridge.OpenEncoder(mm, bridge.EncoderParams{ObjectLayer: 12, Layout: bridge.LayoutLlamaCpp})
		require.ErrorIs(t, err, bridge.ErrArg)
		assert.Contains(t, err.Error(), "11 blocks", "llama.cpp's graph runs one block fewer")
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := bridge.OpenEncoder(filepath.Join(dir, "nope.gguf"), bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrIO)
		assert.Contains(t, err.Error(), "nope.gguf")
	})
	t.Run("not a gguf", func(t *testing.T) {
		p := filepath.Join(dir, "text.gguf")
		require.NoError(t, os.WriteFile(p, []byte("hello, I am not a model"), 0o644))
		_, err := bridge.OpenEncoder(p, bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrFormat)
		assert.Contains(t, err.Error(), "not a GGUF")
	})
	t.Run("truncated", func(t *testing.T) {
		b, err := os.ReadFile(mm)
		require.NoError(t, err)
		for _, n := range []int{len(b) / 2, len(b) - 1, 100} {
			p := filepath.Join(dir, "cut.gguf")
			require.NoError(t, os.WriteFile(p, b[:n], 0o644))
			_, err = bridge.OpenEncoder(p, bridge.EncoderParams{})
			require.Error(t, err, "cut at %d", n)
			assert.Regexp(t, "truncated", err.Error())
		}
	})
	t.Run("wrong image size", func(t *testing.T) {
		enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{})
		require.NoError(t, err)
		defer enc.Close()
		_, err = enc.Encode(nil, &imageprep.Float{W: 224, H: 224, Pix: make([]float32, 224*224*3)}, bridge.EncodeOptions{Threads: 1})
		require.ErrorIs(t, err, bridge.ErrArg)
		assert.Contains(t, err.Error(), "224x224")
	})
	for _, tc := range mutations(t, mm) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bridge.OpenEncoder(tc.path, bridge.EncoderParams{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

type mutation struct {
	name, path, want string
	kind             error
}

func mutations(t *testing.T, mm string) []mutation {
	dir := t.TempDir()
	m := func(name string, e fixture.Edit, kind error, want string) mutation {
		return mutation{name: name, path: fixture.Mutate(t, mm, dir, name+".gguf", e), kind: kind, want: want}
	}
	return []mutation{
		m("wrong projector type", fixture.Edit{Set: map[string]any{"clip.projector_type": "ldp"}}, bridge.ErrUnsup,
			`projector type "ldp" is not supported`),
		m("missing tensor", fixture.Edit{Drop: []string{"v.blk.4.attn_k.weight"}}, bridge.ErrFormat,
			"missing tensor v.blk.4.attn_k.weight"),
		m("missing key", fixture.Edit{Delete: []string{"clip.vision.patch_size"}}, bridge.ErrFormat,
			"missing key clip.vision.patch_size"),
		m("wrong key type", fixture.Edit{Set: map[string]any{"clip.vision.image_size": "336"}}, bridge.ErrFormat,
			"clip.vision.image_size has type"),
		m("bad shape", fixture.Edit{Reshape: map[string][]int64{"v.blk.2.attn_q.weight": {64, 32}}}, bridge.ErrFormat,
			"tensor v.blk.2.attn_q.weight has shape"),
		m("heads do not divide width", fixture.Edit{Set: map[string]any{"clip.vision.attention.head_count": uint32(5)}},
			bridge.ErrFormat, "not divisible by attention.head_count 5"),
		m("no vision encoder", fixture.Edit{Set: map[string]any{"clip.has_vision_encoder": false}}, bridge.ErrUnsup,
			"no vision encoder"),
		m("image not a multiple of patch", fixture.Edit{Set: map[string]any{"clip.vision.patch_size": uint32(15)}},
			bridge.ErrFormat, "not a multiple of clip.vision.patch_size 15"),
		m("multi-layer features", fixture.Edit{Set: map[string]any{"clip.vision.feature_layer": []int32{3, 7, 12}}},
			bridge.ErrUnsup, "clip.vision.feature_layer = [3, 7, 12] concatenates the features of several layers"),
		m("feature layer 0", fixture.Edit{Set: map[string]any{"clip.vision.feature_layer": []int32{0}}},
			bridge.ErrFormat, "clip.vision.feature_layer 0 is outside 1..12"),
		m("feature layer past the stored blocks", fixture.Edit{Set: map[string]any{"clip.vision.feature_layer": []int32{13}}},
			bridge.ErrFormat, "clip.vision.feature_layer 13 is outside 1..12"),
		m("negative feature layer", fixture.Edit{Set: map[string]any{"clip.vision.feature_layer": []int32{-2}}},
			bridge.ErrFormat, "clip.vision.feature_layer -2 is outside 1..12"),
		m("feature layer not int32", fixture.Edit{Set: map[string]any{"clip.vision.feature_layer": []float32{12}}},
			bridge.ErrFormat, "clip.vision.feature_layer is not an array of int32"),
	}
}

// A language model file llama.cpp would abort or choke on is refused first.
func TestLoadModelChecksFileFirst(t *testing.T) {
	lm, _ := fixture.Pair(t, "tiny")
	dir := t.TempDir()
	f, err := gguf.Open(lm)
	require.NoError(t, err)
	kv, ok := f.Get("tokenizer.ggml.tokens")
	f.Close()
	require.True(t, ok)
	toks := append([]string(nil), kv.Value.([]string)...)
	toks[300] = toks[299]
	dup := fixture.Mutate(t, lm, dir, "dup.gguf", fixture.Edit{Set: map[string]any{"tokenizer.ggml.tokens": toks}})
	_, err = bridge.LoadModel(dup, bridge.ModelParams{})
	require.ErrorIs(t, err, bridge.ErrFormat)
	assert.Contains(t, err.Error(), "appears twice (tokens 299 and 300)")

	b, err := os.ReadFile(lm)
	require.NoError(t, err)
	cut := filepath.Join(dir, "cut.gguf")
	require.NoError(t, os.WriteFile(cut, b[:len(b)/2], 0o644))
	_, err = bridge.LoadModel(cut, bridge.ModelParams{})
	require.ErrorIs(t, err, bridge.ErrFormat)
	assert.Contains(t, err.Error(), "beyond the file size")

	m, err := bridge.LoadModel(lm, bridge.ModelParams{})
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, 64, m.NEmbd())
}
