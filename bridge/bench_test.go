package bridge_test

import (
	"math"
	"testing"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// benchThreads is the thread count both encoders get: the two cores of the
// machine class the numbers come from.
const benchThreads = 2

// clipL336Pair generates (once, cached in fixture.Dir()) an mmproj of the
// LLaVA-1.5 shape, CLIP ViT-L/14-336 in F16 projecting to 4096. Ensure
// wants the projector width to equal the LM's, so the pair's LM is 4096
// wide but otherwise minimal; it is never loaded.
func clipL336Pair(b *testing.B) string {
	b.Helper()
	lm := testmodel.LMSpec{NEmbd: 4096, NLayer: 1, NHead: 32, NHeadKV: 32, NFF: 64, NCtx: testmodel.DefaultNCtx,
		Type: testmodel.F16, Seed: testmodel.DefaultSeed}
	_, mm := fixture.Custom(b, "clipl336-bench", lm, testmodel.ClipL336())
	return mm
}

// BenchmarkEncoder compares our instrumented encoder (HiPrune probes at
// layer 9 and the deep layer, CLIP's token order) with llama.cpp's clip on
// the same preprocessed image, threads and weights:
//
//	go test ./bridge/ -run '^$' -bench BenchmarkEncoder -benchtime 3x
//
// `make bench` reports the same comparison as medians of alternated runs.
func BenchmarkEncoder(b *testing.B) {
	mm := clipL336Pair(b)
	clip, err := bridge.OpenClip(mm, false, -1)
	if err != nil {
		b.Fatal(err)
	}
	defer clip.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: benchThreads})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	rgb := fixture.Image(b, 640, 480, 1)
	views, err := clip.Preprocess(rgb)
	if err != nil {
		b.Fatal(err)
	}
	img := views[0]
	in := enc.Info()
	b.Logf("encoder: %d tokens, %d blocks run, object layer %d, flash attention %v, backend %s",
		in.NPatches, in.NRun, in.ObjectLayer, in.FlashAttn, in.Backend)

	b.Run("ours", func(b *testing.B) {
		// One untimed call (b.Loop times only the loop): the first compute
		// starts the thread pool and touches every weight page.
		if _, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: benchThreads}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: benchThreads}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("llamacpp", func(b *testing.B) {
		if _, err := clip.Encode(img, benchThreads); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := clip.Encode(img, benchThreads); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncoderQwen25VL is BenchmarkEncoder for Qwen2.5-VL-3B's vision
// tower (32 blocks of 1280, F16; probes at block 16 and 32) on a 640x480
// picture, 644x476 after the smart resize (391 tokens, 1,564 patches). It
// logs the embeddings' difference from llama.cpp's clip at this shape:
//
//	go test ./bridge/ -run '^$' -bench BenchmarkEncoderQwen25VL -benchtime 1x -v
func BenchmarkEncoderQwen25VL(b *testing.B) {
	mm := visionBenchPair(b, "qwen25vl3b-vision-bench", testmodel.Qwen25VL3BVision())
	clip, err := bridge.OpenClip(mm, false, -1)
	if err != nil {
		b.Fatal(err)
	}
	defer clip.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: benchThreads})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	in := enc.Info()
	p, _ := in.DynamicParams()
	img, err := imageprep.PreprocessDynamic(fixture.Image(b, 640, 480, 1), p)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("encoder: %dx%d input, %d blocks, object layer %d, flash attention %v, backend %s",
		img.W, img.H, in.NRun, in.ObjectLayer, in.FlashAttn, in.Backend)
	compareAndBench(b, enc, clip, img)
}

// BenchmarkEncoderGemma3 is BenchmarkEncoder for Gemma-3-4B's vision tower
// (SigLIP-So400m: 27 blocks of 1152, F16, at 896 px: 4,096 patches pooled
// to 256 tokens; probes at block 13 and 27) on a 640x480 picture, with
// flash attention off on both sides: ggml's CPU flash attention over 4,096
// tokens and 16 heads is many times slower than its matrix products here
// (on a GPU both would use it). It logs the embeddings' difference from
// llama.cpp's clip at this shape:
//
//	go test ./bridge/ -run '^$' -bench BenchmarkEncoderGemma3 -benchtime 1x -v
func BenchmarkEncoderGemma3(b *testing.B) {
	mm := visionBenchPair(b, "gemma3-4b-vision-bench", testmodel.Gemma3Vision4B())
	clip, err := bridge.OpenClip(mm, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer clip.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: benchThreads, FlashAttn: bridge.FlashOff})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	in := enc.Info()
	img, err := imageprep.PreprocessGemma3(fixture.Image(b, 640, 480, 1), imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("encoder: %dx%d input, %d blocks, %dx%d tokens of %dx%d patches, object layer %d, flash attention %v, backend %s",
		img.W, img.H, in.NRun, in.GridW, in.GridH, in.Merge, in.Merge, in.ObjectLayer, in.FlashAttn, in.Backend)
	compareAndBench(b, enc, clip, img)
}

// visionBenchPair generates (once) the mmproj c under name, with a minimal
// F16 LM of the projector's width that is never loaded.
func visionBenchPair(b *testing.B, name string, c testmodel.ClipSpec) string {
	b.Helper()
	lm := testmodel.LMSpec{NEmbd: c.ProjDim, NLayer: 1, NHead: 16, NHeadKV: 16, NFF: 64, NCtx: testmodel.DefaultNCtx,
		Type: testmodel.F16, Seed: testmodel.DefaultSeed}
	_, mm := fixture.Custom(b, name, lm, c)
	return mm
}

// compareAndBench logs how far our embeddings of img are from clip's, then
// times both encoders on it (the comparison's calls warm both up).
func compareAndBench(b *testing.B, enc *bridge.Encoder, clip *bridge.Clip, img *imageprep.Float) {
	b.Helper()
	ours, err := enc.Encode(nil, img, bridge.EncodeOptions{Threads: benchThreads})
	if err != nil {
		b.Fatal(err)
	}
	want, err := clip.Encode(img, benchThreads)
	if err != nil {
		b.Fatal(err)
	}
	var num, den float64
	for i, v := range want {
		num = max(num, math.Abs(float64(ours.Embd[i]-v)))
		den = max(den, math.Abs(float64(v)))
	}
	b.Logf("%dx%d tokens: embeddings max rel err vs llama.cpp %.2e", ours.GridW, ours.GridH, num/den)

	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			if _, err := enc.Encode(ours, img, bridge.EncodeOptions{Threads: benchThreads}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("llamacpp", func(b *testing.B) {
		for b.Loop() {
			if _, err := clip.Encode(img, benchThreads); err != nil {
				b.Fatal(err)
			}
		}
	})
}
