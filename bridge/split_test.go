package bridge_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// Split encoding gives what the whole encoder gives: the same scores, and
// for any tokens, in any order, exactly the rows Encode emits for them
// (everything after the deep block's attention works row by row). Checked
// in both token layouts, with flash attention on and off, on f32 weights
// and on f16 weights at CLIP-L's widths.
func TestSplitEncodingMatchesWhole(t *testing.T) {
	for _, preset := range []string{"tiny", "mid"} {
		t.Run(preset, func(t *testing.T) {
			if preset == "mid" {
				emulator.Skip(t, "CLIP-L widths in f16 take tens of minutes under qemu; the tiny case runs the same graphs")
			}
			_, mm := fixture.Pair(t, preset)
			for _, layout := range []bridge.Layout{bridge.LayoutCLSFirst, bridge.LayoutLlamaCpp} {
				for _, fa := range []bridge.FlashMode{bridge.FlashOn, bridge.FlashOff} {
					enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: layout, Threads: 2, FlashAttn: fa})
					require.NoError(t, err)
					defer enc.Close()
					in := enc.Info()
					require.True(t, in.Split)
					f, err := imageprep.Preprocess(fixture.Image(t, 400, 300, 4), imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
					require.NoError(t, err)
					whole, err := enc.Encode(nil, f, bridge.EncodeOptions{Threads: 2})
					require.NoError(t, err)
					def, err := enc.Encode(nil, f, bridge.EncodeOptions{Threads: 2, Deferred: true})
					require.NoError(t, err)
					assert.True(t, def.Deferred)
					assert.Empty(t, def.Embd)
					require.Len(t, def.Hidden, in.NPatches*in.NEmbd)
					assert.Equal(t, whole.Object, def.Object, "%v %v: object scores", layout, fa)
					assert.Equal(t, whole.Deep, def.Deep, "%v %v: deep scores", layout, fa)

					n := in.NPatches
					all := make([]int, n)
					for i := range all {
						all[i] = i
					}
					got, err := enc.Project(nil, def, all, 2)
					require.NoError(t, err)
					assert.Equal(t, whole.Embd, got, "%v %v: every token", layout, fa)

					// A few tokens, shuffled; one; three (fewer than the 8 rows the tail
					// graph pads to).
					some := rand.New(rand.NewPCG(uint64(n), 7)).Perm(n)[:max(n/9, 2)]
					for _, toks := range [][]int{some, {n - 1}, {5, 2, 9}} {
						got, err = enc.Project(got, def, toks, 2)
						require.NoError(t, err)
						require.Len(t, got, len(toks)*in.ProjDim)
						for j, i := range toks {
							require.Equal(t, whole.Row(i), got[j*in.ProjDim:(j+1)*in.ProjDim], "%v %v: token %d", layout, fa, i)
						}
					}
					// The whole encoder again, after the split graphs.
					again, err := enc.Encode(nil, f, bridge.EncodeOptions{Threads: 2})
					require.NoError(t, err)
					assert.Equal(t, whole.Embd, again.Embd)
				}
			}
		})
	}
}

func TestSplitEncodingErrors(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2})
	require.NoError(t, err)
	defer enc.Close()
	in := enc.Info()
	f, err := imageprep.Preprocess(fixture.Image(t, 336, 336, 1), imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
	require.NoError(t, err)
	whole, err := enc.Encode(nil, f, bridge.EncodeOptions{})
	require.NoError(t, err)
	_, err = enc.Project(nil, whole, []int{0}, 0)
	assert.ErrorIs(t, err, bridge.ErrArg, "not a deferred encoding")
	def, err := enc.Encode(nil, f, bridge.EncodeOptions{Deferred: true})
	require.NoError(t, err)
	for _, toks := range [][]int{nil, {-1}, {in.NPatches}, make([]int, in.NPatches+1)} {
		_, err = enc.Project(nil, def, toks, 0)
		assert.ErrorIs(t, err, bridge.ErrArg, "%d tokens", len(toks))
	}

	// The families whose encoders do not split refuse it.
	_, qwen := fixture.Qwen25VL(t)
	for _, mm := range []string{gemmaMMProj(t, "tiny-gemma3"), qwen} {
		e, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 2})
		require.NoError(t, err)
		in := e.Info()
		assert.False(t, in.Split)
		side := in.ImageSize
		if in.Dynamic {
			side = in.PatchSize * in.Merge * 2
		}
		_, err = e.Encode(nil, &imageprep.Float{W: side, H: side, Pix: make([]float32, 3*side*side)}, bridge.EncodeOptions{Deferred: true})
		assert.ErrorIs(t, err, bridge.ErrUnsup)
		assert.ErrorContains(t, err, "does not split its encoder")
		e.Close()
	}
}
