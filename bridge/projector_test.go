package bridge_test

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

func TestReadProjector(t *testing.T) {
	_, llava := fixture.Pair(t, "tiny")
	pi, err := bridge.ReadProjector(llava)
	require.NoError(t, err)
	assert.Equal(t, bridge.ProjectorInfo{Type: "mlp", Family: "LLaVA-1.5 / NeXT", Vision: true}, pi)
	assert.True(t, pi.Encoder())

	_, gemma := fixture.Gemma3(t)
	pi, err = bridge.ReadProjector(gemma)
	require.NoError(t, err)
	assert.Equal(t, bridge.ProjectorInfo{Type: "gemma3", Family: "Gemma 3", Vision: true}, pi)
	assert.True(t, pi.Encoder(), "the encoder runs it and the pipeline prunes it")
	assert.True(t, pi.Known())

	_, janus := fixture.Janus(t)
	pi, err = bridge.ReadProjector(janus)
	require.NoError(t, err)
	assert.Equal(t, bridge.ProjectorInfo{Type: "janus_pro", Family: "Janus-Pro", Vision: true}, pi)
	assert.False(t, pi.Encoder())
	assert.NotContains(t, bridge.InstrumentedProjectors(), pi.Type, "only llama.cpp's mtmd runs it")
	assert.True(t, pi.Known())

	dir := t.TempDir()
	noKey := fixture.Mutate(t, llava, dir, "nokey.gguf", fixture.Edit{Delete: []string{"clip.projector_type"}})
	pi, err = bridge.ReadProjector(noKey)
	require.NoError(t, err)
	assert.Equal(t, "mlp", pi.Type, "clip.cpp's default for old LLaVA files")
	vision := fixture.Mutate(t, noKey, dir, "vision.gguf", fixture.Edit{Set: map[string]any{"clip.vision.projector_type": "idefics3"}})
	pi, err = bridge.ReadProjector(vision)
	require.NoError(t, err)
	assert.Equal(t, "idefics3", pi.Type, "clip.vision.projector_type of mixed-modality files")

	_, err = bridge.ReadProjector(filepath.Join(dir, "missing.gguf"))
	assert.ErrorIs(t, err, bridge.ErrIO)
}

// Every projector type the pinned llama.cpp names has a family, and no
// other: the table follows clip-impl.h.
func TestProjectorFamiliesFollowClip(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "third_party", "include", "mtmd", "clip-impl.h"))
	require.NoError(t, err)
	block := regexp.MustCompile(`(?s)PROJECTOR_TYPE_NAMES = \{(.*?)\};`).FindSubmatch(src)
	require.NotNil(t, block, "PROJECTOR_TYPE_NAMES not found in clip-impl.h")
	names := regexp.MustCompile(`\{\s*PROJECTOR_TYPE_\w+,\s*"([^"]+)"\s*\}`).FindAllSubmatch(block[1], -1)
	require.NotEmpty(t, names)
	for _, m := range names {
		assert.NotEmpty(t, bridge.ProjectorFamily(string(m[1])), "projector type %q has no family", m[1])
	}
	assert.Empty(t, bridge.ProjectorFamily("no-such-type"))
	for _, typ := range bridge.InstrumentedProjectors() {
		assert.NotEmpty(t, bridge.ProjectorFamily(typ), typ)
	}
}

// The encoder refuses the other families, listing the ones it runs; mtmd
// loads the generated Janus-Pro mmproj and runs it: every patch a token,
// whatever the image's shape (clip.cpp pads it to a square first).
func TestJanusProThroughMtmd(t *testing.T) {
	lm, mm := fixture.Janus(t)
	_, err := bridge.OpenEncoder(mm, bridge.EncoderParams{})
	assert.ErrorIs(t, err, bridge.ErrUnsup)
	assert.ErrorContains(t, err, `projector type "janus_pro" is not supported (supported: `+strings.Join(bridge.InstrumentedProjectors(), ", ")+")")
	for _, typ := range bridge.EncoderProjectors() {
		assert.Contains(t, bridge.InstrumentedProjectors(), typ, "the pipeline prunes only what the encoder runs")
	}

	m, err := bridge.LoadModel(lm, bridge.ModelParams{})
	require.NoError(t, err)
	defer m.Close()
	x, err := bridge.OpenMtmd(mm, m, bridge.MtmdParams{Threads: 2})
	require.NoError(t, err)
	defer x.Close()
	assert.True(t, x.SupportsVision())
	ctx, err := bridge.NewContext(m, bridge.ContextParams{NCtx: 512, Threads: 2})
	require.NoError(t, err)
	defer ctx.Close()

	a, b := fixture.Image(t, 60, 40, 1), fixture.Image(t, 30, 50, 2)
	mk := bridge.MtmdMarker()
	ch, err := x.Tokenize("USER: "+mk+" and "+mk+"\nWhat is it? ASSISTANT:", []*imageprep.RGB{a, b}, true)
	require.NoError(t, err)
	defer ch.Free()
	var images, chunks []int
	for i := 0; i < ch.Len(); i++ {
		if ch.IsImage(i) {
			images, chunks = append(images, ch.ImageIndex(i)), append(chunks, i)
			assert.Equal(t, 16, ch.NTokens(i), "4x4 patches, no merge")
			assert.Equal(t, 16, ch.NPos(i))
		} else {
			assert.Equal(t, -1, ch.ImageIndex(i))
			assert.Equal(t, ch.NTokens(i), ch.NPos(i))
		}
	}
	assert.Equal(t, []int{0, 1}, images)
	// No image delimiters: the chunks around an image are the prompt's
	// own text (mtmd adds begin/end tokens only for other families).
	assert.Equal(t, []int{1, 3}, chunks, "text, image, text, image, text")
	assert.Equal(t, 5, ch.Len())

	// An image cannot give the first answer token's logits.
	_, _, err = x.EvalChunk(ctx, ch, chunks[0], 0, true)
	assert.ErrorIs(t, err, bridge.ErrArg)

	n, tm, err := x.Eval(ctx, ch, 0, true)
	require.NoError(t, err)
	assert.Equal(t, 32, tm.ImageTokens)
	assert.Equal(t, tm.ImageTokens+tm.TextTokens, n)
	assert.Equal(t, n, ctx.KVCells())
	for _, v := range ctx.Logits() {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "logit %v", v)
	}

	emb, k, err := x.EncodeImage(a)
	require.NoError(t, err)
	assert.Equal(t, 16, k)
	require.Len(t, emb, 16*m.NEmbd(), "clip_n_mmproj_embd (mm.1.bias) is the LM's width")
	for _, v := range emb {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "embedding %v", v)
	}
}

// clip.cpp's Janus-Pro preprocessing: the image scaled to fit and centred
// on a gray (127) square, not a black one as for Gemma 3.
func TestJanusProPreprocess(t *testing.T) {
	_, mm := fixture.Janus(t)
	c, err := bridge.OpenClip(mm, false, 0)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, 64, c.ImageSize())
	assert.Equal(t, 64, c.NEmbd())
	assert.Equal(t, 16, c.NTokens(64, 64))
	fs, err := c.Preprocess(fixture.Image(t, 128, 64, 3)) // scaled to 64x32, 16 gray rows above and below
	require.NoError(t, err)
	require.Len(t, fs, 1)
	f := fs[0]
	require.Equal(t, [2]int{64, 64}, [2]int{f.W, f.H})
	gray := float32((127.0/255 - 0.5) / 0.5) // SigLIP's mean and std
	at := func(x, y, ch int) float32 { return f.Pix[(y*f.W+x)*3+ch] }
	for _, y := range []int{0, 15, 48, 63} {
		for _, x := range []int{0, 31, 63} {
			for ch := range 3 {
				assert.InDelta(t, gray, at(x, y, ch), 1e-6, "padding at (%d,%d)", x, y)
			}
		}
	}
	var picture int
	for y := 16; y < 48; y++ {
		for x := range 64 {
			if math.Abs(float64(at(x, y, 0)-gray)) > 1e-3 {
				picture++
			}
		}
	}
	assert.Greater(t, picture, 64*32/2, "the picture fills the middle rows")
}

// A file clip.cpp would abort on (image_mean missing) is refused first.
func TestOpenMtmdChecksHeader(t *testing.T) {
	lm, mm := fixture.Janus(t)
	bad := fixture.Mutate(t, mm, t.TempDir(), "nomean.gguf", fixture.Edit{Delete: []string{"clip.vision.image_mean"}})
	m, err := bridge.LoadModel(lm, bridge.ModelParams{})
	require.NoError(t, err)
	defer m.Close()
	_, err = bridge.OpenMtmd(bad, m, bridge.MtmdParams{Threads: 2})
	assert.ErrorIs(t, err, bridge.ErrFormat)
	assert.ErrorContains(t, err, "clip.vision.image_mean")

	// llama.cpp's own reason comes back in the error (not only in the log).
	wrong := fixture.Mutate(t, mm, t.TempDir(), "notensor.gguf", fixture.Edit{Drop: []string{"mm.1.weight"}})
	_, err = bridge.OpenMtmd(wrong, m, bridge.MtmdParams{Threads: 2})
	assert.ErrorIs(t, err, bridge.ErrFormat)
	assert.ErrorContains(t, err, "mm.1.weight")
}
