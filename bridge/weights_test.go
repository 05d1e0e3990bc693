package bridge_test

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// quantizedCopy writes the mmproj of spec c again with its matrices in
// quant ("q8_0", "q4_0"), quantized by internal/gguf from the values stored
// in src: a quantized mmproj as a converter would make it from that file.
func quantizedCopy(t *testing.T, src string, c testmodel.ClipSpec, quant string) string {
	t.Helper()
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	ws := testmodel.Weights{}
	for _, ti := range f.Tensors {
		v, err := f.ReadTensorFloat32(ti.Name)
		require.NoError(t, err, ti.Name)
		ws[ti.Name] = v
	}
	c.MatQuant = quant
	w, err := testmodel.NewMMProjWriterWeights(c, ws)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "mmproj-"+quant+".gguf")
	require.NoError(t, w.WriteFile(path))
	return path
}

// EncoderParams.Weights converts the matrix weights at load. Checked against
// llama.cpp's clip on a file whose matrices are stored quantized (written by
// internal/gguf's own quantizers from the same values): our encoder on the
// f32 file converting at load, and on the quantized file as stored, give
// clip's embeddings; the quantized encoder differs from the f32 one by what
// the type's rounding explains, and not by nothing.
func TestEncoderWeightsMatchClipOnQuantizedFile(t *testing.T) {
	c := testmodel.TinyClip()
	_, mm := fixture.Pair(t, "tiny")
	base, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1})
	require.NoError(t, err)
	defer base.Close()
	assert.Equal(t, "f32", base.Info().WeightType)
	cases := []struct {
		quant   string
		weights bridge.Weights
		// quantized vs f32 weights, relative to the embeddings' scale: about
		// half of each is measured (3.0e-2 and 3.3e-1) through the tiny
		// tower's 12 random blocks, which compound the rounding; whether
		// answers survive it is make eval's question, on the trained testbed
		maxVsF float64
	}{
		{"q8_0", bridge.WeightsQ8_0, 6e-2},
		{"q4_0", bridge.WeightsQ4_0, 0.7},
	}
	for _, tc := range cases {
		t.Run(tc.quant, func(t *testing.T) {
			qfile := quantizedCopy(t, mm, c, tc.quant)
			// clip without flash attention, as our encoder's "auto" runs CLIP
			// on the CPU (TestEncoderMatchesLlamaCppClip covers both).
			clip, err := bridge.OpenClip(qfile, false, 0)
			require.NoError(t, err)
			defer clip.Close()
			// clip keeps its weights in ggml's plain buffer; so do these
			// (TestEncoderRepackedWeights compares the repacked ones).
			conv, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1, Weights: tc.weights, NoRepack: true})
			require.NoError(t, err)
			defer conv.Close()
			stored, err := bridge.OpenEncoder(qfile, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1, NoRepack: true})
			require.NoError(t, err)
			defer stored.Close()
			assert.Equal(t, tc.quant, conv.Info().WeightType)
			assert.Equal(t, tc.quant, stored.Info().WeightType)
			for seed := uint64(1); seed <= 2; seed++ {
				img := preprocessed(t, clip, 500, 375, seed)
				want, err := clip.Encode(img, 2)
				require.NoError(t, err)
				gotConv := encode(t, conv, img)
				gotStored := encode(t, stored, img)
				eConv, eStored := relErr(t, gotConv.Embd, want), relErr(t, gotStored.Embd, want)
				eF := relErr(t, gotConv.Embd, encode(t, base, img).Embd)
				t.Logf("%s seed %d: vs clip on the %s file: converted at load %.2e, as stored %.2e; vs f32 weights %.2e",
					tc.quant, seed, tc.quant, eConv, eStored, eF)
				// ggml_quantize_chunk at load and internal/gguf's quantizers
				// make the same bytes, so both equal clip exactly (measured 0)
				assert.LessOrEqual(t, eConv, 1e-6, "converted at load vs clip")
				assert.LessOrEqual(t, eStored, 1e-6, "as stored vs clip")
				assert.Greater(t, eF, 1e-5, "the quantized encoder should not equal the f32 one")
				assert.LessOrEqual(t, eF, tc.maxVsF)
			}
		})
	}
}

func TestEncoderWeightsErrors(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	q4 := quantizedCopy(t, mm, testmodel.TinyClip(), "q4_0")
	_, err := bridge.OpenEncoder(q4, bridge.EncoderParams{Weights: bridge.WeightsQ8_0})
	require.Error(t, err)
	assert.ErrorIs(t, err, bridge.ErrUnsup)
	assert.Contains(t, err.Error(), "stored as q4_0")
	assert.Contains(t, err.Error(), "v.blk.0.attn_q.weight")

	_, err = bridge.OpenEncoder(mm, bridge.EncoderParams{Weights: bridge.Weights(9)})
	assert.ErrorIs(t, err, bridge.ErrArg)

	for _, s := range []string{"", "f16", "q8_0", "q4_0"} {
		w, ok := bridge.ParseWeights(s)
		require.True(t, ok, s)
		if s != "" {
			assert.Equal(t, s, w.String())
		}
	}
	_, ok := bridge.ParseWeights("q5_k")
	assert.False(t, ok)
}

// repacksQ4_0 says whether ggml's repacked Q4_0 layouts have a kernel on
// this CPU: AVX2 on x86 (every CPU of this project's machine class), the
// dot-product extension on arm64 (make cross-test's and make build's
// -march).
func repacksQ4_0(t *testing.T) bool {
	switch runtime.GOARCH {
	case "arm64":
		return true
	case "amd64":
		b, err := os.ReadFile("/proc/cpuinfo")
		if err != nil {
			t.Logf("cannot tell whether this CPU has AVX2: %v", err)
			return false
		}
		return regexp.MustCompile(`(?m)^flags\s*:.*\bavx2\b`).Match(b)
	}
	return false
}

// The build has ggml's repacked layouts (the Makefile defines
// GGML_USE_CPU_REPACK, as llama.cpp's CMake does by default), and on a CPU
// with their kernels the encoder's q4_0 matrices go there, unless NoRepack.
// Repacked weights multiply the same q4_0 and q8_0 blocks, summed in
// another order. Alone that is float rounding (measured 6e-8 on the
// first block's scores), but the activations are rounded to 8 bits before
// each product and GELU reads an f16 table, so now and then a rounding
// difference crosses a step: a few rows of a one-block encoder differ by
// about 1e-2, and through the tiny tower's 12 random blocks the largest
// difference is 1.6e-2 (AMD EPYC, AVX2). Quantizing to q4_0 itself moves
// the embeddings by 0.24 to 0.32 (TestEncoderWeightsMatchClipOnQuantizedFile).
// The split encoder still gives exactly the whole encoder's rows, also
// for a count of rows that is not a multiple of 4 (ggml's repacked kernels
// multiply four rows at a time and the rest one by one).
func TestEncoderRepackedWeights(t *testing.T) {
	extra := bridge.CPUExtraBuffers()
	t.Logf("CPU extra buffer types: %v", extra)
	if strings.Contains(os.Getenv("CGO_CPPFLAGS"), "-DGGML_USE_CPU_REPACK") {
		require.Contains(t, extra, "CPU_REPACK", "built with GGML_USE_CPU_REPACK, yet ggml's CPU backend does not offer it")
	}
	_, mm := fixture.Pair(t, "tiny")
	open := func(w bridge.Weights, noRepack bool) *bridge.Encoder {
		e, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2, Weights: w, NoRepack: noRepack})
		require.NoError(t, err)
		t.Cleanup(e.Close)
		return e
	}
	plain, packed := open(bridge.WeightsQ4_0, true), open(bridge.WeightsQ4_0, false)
	assert.Equal(t, "CPU", plain.Info().WeightBuffer)
	// f16 matrices stay in the plain buffer: tinyBLAS multiplies them there,
	// and the extra types' f16 paths are unmeasured.
	assert.Equal(t, "CPU", open(bridge.WeightsF16, false).Info().WeightBuffer)
	got := packed.Info().WeightBuffer
	t.Logf("q4_0 matrices in %s", got)
	if !slices.Contains(extra, "CPU_REPACK") || !repacksQ4_0(t) {
		t.Skipf("no repacked q4_0 kernel in this build or on this CPU (extra buffers %v); the q4_0 weights are in %s", extra, got)
	}
	require.Contains(t, extra, got, "q4_0 weights should be in one of the CPU's extra buffer types")

	in := packed.Info()
	f, err := imageprep.Preprocess(fixture.Image(t, 400, 300, 6), imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
	require.NoError(t, err)
	a, b := encode(t, plain, f), encode(t, packed, f)
	eEmbd, eObj, eDeep := relErr(t, b.Embd, a.Embd), relErr(t, b.Object, a.Object), relErr(t, b.Deep, a.Deep)
	t.Logf("repacked vs plain q4_0: embeddings %.2e, object scores %.2e, deep scores %.2e", eEmbd, eObj, eDeep)
	for _, e := range []float64{eEmbd, eObj, eDeep} {
		assert.LessOrEqual(t, e, 5e-2)
	}
	assert.Greater(t, eEmbd, 0.0, "repacked weights should take ggml's other kernel")

	def, err := packed.Encode(nil, f, bridge.EncodeOptions{Threads: 2, Deferred: true})
	require.NoError(t, err)
	toks := []int{0, 7, 100, in.NPatches - 1, 300}
	rows, err := packed.Project(nil, def, toks, 2)
	require.NoError(t, err)
	for j, i := range toks {
		assert.Equal(t, b.Row(i), rows[j*in.ProjDim:(j+1)*in.ProjDim], "token %d: split vs whole", i)
	}
}
