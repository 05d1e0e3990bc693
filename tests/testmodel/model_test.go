package testmodel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func withWorkers(t *testing.T, n int) {
	old := genWorkers
	genWorkers = n
	t.Cleanup(func() { genWorkers = old })
}

func elems(ne []int64) int64 {
	n := int64(1)
	for _, x := range ne {
		n *= x
	}
	return n
}

func TestTinyPairGeneration(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	lmPath, mmPath, err := WritePair(dir, TinyLM(), TinyClip())
	require.NoError(t, err)
	elapsed := time.Since(start)
	t.Logf("tiny pair generated in %v", elapsed)
	assert.Less(t, elapsed, emulator.Timeout(5*time.Second))

	// independent reader: ollama's fs/ggml
	for _, p := range []string{lmPath, mmPath} {
		fh, err := os.Open(p)
		require.NoError(t, err)
		g, err := ggml.Decode(fh, -1)
		fh.Close()
		require.NoError(t, err, p)
		st, _ := os.Stat(p)
		last := g.Tensors().Items()[len(g.Tensors().Items())-1]
		assert.LessOrEqual(t, g.Tensors().Offset+last.Offset+last.Size(), uint64(st.Size()))
		if p == lmPath {
			kv := g.KV()
			assert.Equal(t, "llama", kv.Architecture())
			assert.Equal(t, uint64(64), kv.EmbeddingLength())
			assert.Equal(t, uint64(2), kv.BlockCount())
			assert.Equal(t, uint64(4096), kv.ContextLength())
			assert.Equal(t, "llama", kv.String("tokenizer.ggml.model"))
			assert.Len(t, kv.Strings("tokenizer.ggml.tokens"), BuiltinVocabSize())
			assert.Equal(t, uint64(TinyLM().ParamCount()), kv.ParameterCount())
		} else {
			assert.Equal(t, "clip", g.KV().Architecture())
			assert.Equal(t, uint64(TinyClip().ParamCount()), g.KV().ParameterCount())
		}
	}

	lm, err := gguf.Open(lmPath)
	require.NoError(t, err)
	defer lm.Close()
	wantLM := []string{"token_embd.weight"}
	for i := 0; i < 2; i++ {
		for _, n := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"} {
			wantLM = append(wantLM, fmt.Sprintf("blk.%d.%s.weight", i, n))
		}
	}
	wantLM = append(wantLM, "output_norm.weight", "output.weight")
	var names []string
	for _, ti := range lm.Tensors {
		names = append(names, ti.Name)
	}
	assert.Equal(t, wantLM, names)
	_, hasTmpl := lm.Get("tokenizer.chat_template")
	assert.False(t, hasTmpl)
	kvTypes := map[string]gguf.ValueType{}
	for _, kv := range lm.KV {
		kvTypes[kv.Key] = kv.Type
	}
	for _, k := range []string{"llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
		"llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "general.alignment", "general.file_type"} {
		assert.Equal(t, gguf.ValUint32, kvTypes[k], k) // llama.cpp's loader checks types strictly
	}
	assert.Equal(t, gguf.ValFloat32, kvTypes["llama.attention.layer_norm_rms_epsilon"])
	assert.Equal(t, gguf.ValBool, kvTypes["tokenizer.ggml.add_bos_token"])

	mm, err := gguf.Open(mmPath)
	require.NoError(t, err)
	defer mm.Close()
	c := TinyClip()
	pe, _ := mm.Tensor("v.patch_embd.weight")
	assert.Equal(t, []int64{14, 14, 3, 64}, pe.Ne)
	assert.Equal(t, gguf.TypeF16, pe.Type)
	pos, _ := mm.Tensor("v.position_embd.weight")
	assert.Equal(t, []int64{64, 577}, pos.Ne)
	down, _ := mm.Tensor("v.blk.0.ffn_down.weight")
	assert.Equal(t, []int64{int64(c.NEmbd), int64(c.NFF)}, down.Ne, "legacy naming: ffn_down holds fc1, ne[0] == n_embd")
	up, _ := mm.Tensor("v.blk.0.ffn_up.weight")
	assert.Equal(t, []int64{int64(c.NFF), int64(c.NEmbd)}, up.Ne)
	mm2, _ := mm.Tensor("mm.2.weight")
	assert.Equal(t, int64(TinyLM().NEmbd), mm2.Ne[1], "clip_n_mmproj_embd = mm_2_w->ne[1] = LM n_embd")
	_, ok := mm.Tensor(fmt.Sprintf("v.blk.%d.ln2.bias", c.NLayer-1))
	assert.True(t, ok)
	_, ok = mm.Tensor(fmt.Sprintf("v.blk.%d.ln1.weight", c.NLayer))
	assert.False(t, ok)
	_, ok = mm.Tensor("v.post_ln.weight")
	assert.False(t, ok)
	_, ok = mm.Get("clip.vision.feature_layer")
	assert.False(t, ok, "no feature_layer key by default, like 2023-era LLaVA files")
	assert.Len(t, mm.Tensors, 4+5+16*c.NLayer)

	// every value finite; 1-D tensors F32
	for _, f := range []*gguf.File{lm, mm} {
		for _, ti := range f.Tensors {
			vals, err := f.ReadTensorFloat32(ti.Name)
			require.NoError(t, err)
			for i, v := range vals {
				require.Falsef(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "%s[%d]=%v", ti.Name, i, v)
			}
			if len(ti.Ne) == 1 {
				assert.Equal(t, gguf.TypeF32, ti.Type, ti.Name)
			}
		}
	}
}

// stats returns mean and standard deviation.
func stats(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func TestWeightDistributions(t *testing.T) {
	dir := t.TempDir()
	lmq := TinyLM()
	lmq.Type = Q4_0
	lmq.NFF = 256
	for _, s := range []LMSpec{TinyLM(), lmq} {
		p := filepath.Join(dir, s.Type.String()+".gguf")
		require.NoError(t, WriteLM(p, s))
		f, err := gguf.Open(p)
		require.NoError(t, err)
		for _, c := range []struct {
			name      string
			mean, std float64
		}{
			{"blk.0.attn_q.weight", 0, 1 / 8.0},
			{"blk.1.ffn_down.weight", 0, 1 / math.Sqrt(float64(s.NFF))},
			{"token_embd.weight", 0, 1 / 8.0},
			{"blk.0.attn_norm.weight", 1, 0.02},
		} {
			v, err := f.ReadTensorFloat32(c.name)
			require.NoError(t, err)
			mean, std := stats(v)
			assert.InDelta(t, c.mean, mean, 0.1*c.std+0.005, "%v %s mean", s.Type, c.name)
			assert.InEpsilon(t, c.std, std, 0.15, "%v %s std", s.Type, c.name)
		}
		f.Close()
	}
}

func TestDeterminism(t *testing.T) {
	lmq := TinyLM()
	lmq.Type = Q4_0
	lm16 := TinyLM()
	lm16.Type = F16
	lm16.ChatTemplate = "{% for m in messages %}{{ m.content }}{% endfor %}"
	c16 := TinyClip()
	c16.Type = F16
	c16.WithPostLN = true
	c16.UseGELU = true
	cases := []struct {
		name string
		lm   LMSpec
		clip ClipSpec
	}{{"tiny", TinyLM(), TinyClip()}, {"q4_0+f16", lmq, c16}, {"f16", lm16, TinyClip()}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hashes [][2]string
			for _, workers := range []int{1, 3} {
				withWorkers(t, workers)
				lm, mm, err := WritePair(t.TempDir(), c.lm, c.clip)
				require.NoError(t, err)
				hashes = append(hashes, [2]string{fileHash(t, lm), fileHash(t, mm)})
			}
			assert.Equal(t, hashes[0], hashes[1], "byte-identical regardless of parallelism")
			t.Logf("%s: lm %s mmproj %s", c.name, hashes[0][0][:16], hashes[0][1][:16])

			other := c.lm
			other.Seed++
			oc := c.clip
			oc.Seed++
			lm, mm, err := WritePair(t.TempDir(), other, oc)
			require.NoError(t, err)
			assert.NotEqual(t, hashes[0][0], fileHash(t, lm), "seed changes the LM")
			assert.NotEqual(t, hashes[0][1], fileHash(t, mm), "seed changes the mmproj")
		})
	}
}

func TestChatTemplateAndOptionalTensors(t *testing.T) {
	dir := t.TempDir()
	lm := TinyLM()
	lm.ChatTemplate = "USER: {{ prompt }} ASSISTANT:"
	c := TinyClip()
	c.WithPostLN = true
	lmPath, mmPath, err := WritePair(dir, lm, c)
	require.NoError(t, err)
	f, err := gguf.Open(lmPath)
	require.NoError(t, err)
	defer f.Close()
	kv, ok := f.Get("tokenizer.chat_template")
	require.True(t, ok)
	assert.Equal(t, lm.ChatTemplate, kv.Value)
	m, err := gguf.Open(mmPath)
	require.NoError(t, err)
	defer m.Close()
	for _, n := range []string{"v.post_ln.weight", "v.post_ln.bias"} {
		ti, ok := m.Tensor(n)
		require.True(t, ok, n)
		assert.Equal(t, []int64{64}, ti.Ne)
	}
	assert.Equal(t, c.ParamCount(), sumParams(m.Tensors))
}

func sumParams(ts []gguf.TensorInfo) int64 {
	var n int64
	for _, t := range ts {
		n += elems(t.Ne)
	}
	return n
}

func TestValidation(t *testing.T) {
	lmCases := []struct {
		mut  func(*LMSpec)
		want string
	}{
		{func(s *LMSpec) { s.NEmbd = 0 }, "LMSpec.NEmbd=0: must be >= 1"},
		{func(s *LMSpec) { s.NLayer = 0 }, "LMSpec.NLayer=0"},
		{func(s *LMSpec) { s.NHead = 5 }, "LMSpec.NEmbd=64: not divisible by NHead=5"},
		{func(s *LMSpec) { s.NEmbd, s.NHead, s.NHeadKV = 66, 22, 22 }, "LMSpec.NHead=22: head size NEmbd/NHead=3 must be even"},
		{func(s *LMSpec) { s.NHeadKV = 0 }, "LMSpec.NHeadKV=0"},
		{func(s *LMSpec) { s.NHeadKV = 3 }, "LMSpec.NHeadKV=3: must divide NHead=4"},
		{func(s *LMSpec) { s.NFF = 0 }, "LMSpec.NFF=0"},
		{func(s *LMSpec) { s.NCtx = 0 }, "LMSpec.NCtx=0"},
		{func(s *LMSpec) { s.VocabWords = 100 }, "LMSpec.VocabWords=100: must be 0 or >= the built-in vocabulary size"},
		{func(s *LMSpec) { s.Type = gguf.TypeQ8_0 }, "LMSpec.Type=Q8_0: must be F32, F16 or Q4_0"},
		{func(s *LMSpec) { s.Type, s.NFF = Q4_0, 100 }, "LMSpec.NFF=100: must be a multiple of 32 for Q4_0"},
		{func(s *LMSpec) { s.Type, s.NEmbd, s.NHead, s.NHeadKV = Q4_0, 48, 4, 4 }, "LMSpec.NEmbd=48: must be a multiple of 32 for Q4_0"},
	}
	for _, c := range lmCases {
		s := TinyLM()
		c.mut(&s)
		err := s.Validate()
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
		_, _, err = WritePair(t.TempDir(), s, TinyClip())
		assert.ErrorContains(t, err, c.want, "WritePair validates before writing")
	}
	clipCases := []struct {
		mut  func(*ClipSpec)
		want string
	}{
		{func(c *ClipSpec) { c.ImageSize = 0 }, "ClipSpec.ImageSize=0"},
		{func(c *ClipSpec) { c.PatchSize = 0 }, "ClipSpec.PatchSize=0"},
		{func(c *ClipSpec) { c.ImageSize = 330 }, "ClipSpec.ImageSize=330: not divisible by PatchSize=14"},
		{func(c *ClipSpec) { c.NHead = 6 }, "ClipSpec.NEmbd=64: not divisible by NHead=6"},
		{func(c *ClipSpec) { c.NLayer = 1 }, "ClipSpec.NLayer=1: must be >= 2"},
		{func(c *ClipSpec) { c.FeatureLayer = 13 }, "ClipSpec.FeatureLayer=13: must be 0 (no key) or 1..NLayer=12"},
		{func(c *ClipSpec) { c.FeatureLayer = -2 }, "ClipSpec.FeatureLayer=-2"},
		{func(c *ClipSpec) { c.ProjDim = 0 }, "ClipSpec.ProjDim=0: must be >= 1"},
		{func(c *ClipSpec) { c.NFF = 0 }, "ClipSpec.NFF=0"},
		{func(c *ClipSpec) { c.Type = Q4_0 }, "ClipSpec.Type=Q4_0: must be F32 or F16"},
		{func(c *ClipSpec) { c.LayerNormEps = 0 }, "ClipSpec.LayerNormEps=0"},
		{func(c *ClipSpec) { c.Std[1] = 0 }, "ClipSpec.Std[1]=0"},
		{func(c *ClipSpec) { c.Mean[2] = float32(math.NaN()) }, "ClipSpec.Mean[2]=NaN"},
	}
	for _, c := range clipCases {
		s := TinyClip()
		c.mut(&s)
		err := s.Validate()
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
		_, err = NewMMProjWriter(s)
		assert.ErrorContains(t, err, c.want)
	}
	c := TinyClip()
	c.ProjDim = 32
	dir := t.TempDir()
	_, _, err := WritePair(dir, TinyLM(), c)
	assert.EqualError(t, err, "testmodel: ClipSpec.ProjDim=32 must equal LMSpec.NEmbd=64")
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "nothing written on a validation error")
	_, _, err = PresetPair("huge")
	assert.ErrorContains(t, err, `unknown preset "huge"`)
}

func TestPresetParamCounts(t *testing.T) {
	for _, name := range Presets {
		lm, clip, err := PresetPair(name)
		require.NoError(t, err)
		require.NoError(t, CheckPair(lm, clip))
		// ParamCount agrees with the tensors actually declared
		lw, err := NewLMWriter(lm)
		require.NoError(t, err)
		var n int64
		for _, ti := range lw.Tensors() {
			n += elems(ti.Ne)
		}
		assert.Equal(t, lm.ParamCount(), n, name)
		cw, err := NewMMProjWriter(clip)
		require.NoError(t, err)
		n = 0
		for _, ti := range cw.Tensors() {
			n += elems(ti.Ne)
		}
		assert.Equal(t, clip.ParamCount(), n, name)
		lsz, err := lw.Size()
		require.NoError(t, err)
		csz, err := cw.Size()
		require.NoError(t, err)
		t.Logf("%-4s LM %.4f B params (%.1f MiB), mmproj %.1f M params (%.1f MiB)", name,
			float64(lm.ParamCount())/1e9, float64(lsz)/(1<<20), float64(clip.ParamCount())/1e6, float64(csz)/(1<<20))
	}
	p7 := float64(LM7B().ParamCount())
	assert.InDelta(t, 6.74e9, p7, 0.01e9, "Llama-2-7B has 6.74 B parameters")
	p1 := float64(LM1B().ParamCount())
	assert.GreaterOrEqual(t, p1, 0.8e9)
	assert.LessOrEqual(t, p1, 1.3e9)
	// CLIP ViT-L/14-336 vision tower with 23 of 24 blocks, no post-LN, plus
	// the 1024->4096->4096 projector: 303.5 M - 12.6 M (one block) + 21.0 M
	assert.InDelta(t, 311.9e6, float64(ClipL336().ParamCount()), 0.2e6)
	assert.Equal(t, 576, ClipL336().NPatches())
	assert.Equal(t, 576, TinyClip().NPatches())
	assert.Equal(t, 23, ClipL336().NLayer)
}

func TestEnsureCaches(t *testing.T) {
	dir := t.TempDir()
	lmPath, mmPath, err := Ensure(dir, "tiny", TinyLM(), TinyClip())
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "tiny-lm.gguf"), lmPath)
	assert.Equal(t, filepath.Join(dir, "tiny-mmproj.gguf"), mmPath)
	st1, err := os.Stat(lmPath)
	require.NoError(t, err)
	spec, err := os.ReadFile(filepath.Join(dir, "tiny.spec.json"))
	require.NoError(t, err)
	assert.Contains(t, string(spec), SpecHash(TinyLM(), TinyClip()))
	assert.Contains(t, string(spec), `"Type": "F32"`)

	// unchanged spec: nothing rewritten (same inode, same mtime)
	_, _, err = Ensure(dir, "tiny", TinyLM(), TinyClip())
	require.NoError(t, err)
	st2, _ := os.Stat(lmPath)
	assert.True(t, os.SameFile(st1, st2))
	assert.Equal(t, st1.ModTime(), st2.ModTime())

	// changed spec: regenerated
	lm2 := TinyLM()
	lm2.Seed = 99
	_, _, err = Ensure(dir, "tiny", lm2, TinyClip())
	require.NoError(t, err)
	st3, _ := os.Stat(lmPath)
	assert.False(t, os.SameFile(st1, st3))
	h := fileHash(t, lmPath)

	// damaged file (wrong size): regenerated to the same bytes
	require.NoError(t, os.Truncate(lmPath, 1000))
	_, _, err = Ensure(dir, "tiny", lm2, TinyClip())
	require.NoError(t, err)
	assert.Equal(t, h, fileHash(t, lmPath))

	// missing mmproj: regenerated
	require.NoError(t, os.Remove(mmPath))
	_, _, err = Ensure(dir, "tiny", lm2, TinyClip())
	require.NoError(t, err)
	_, err = os.Stat(mmPath)
	assert.NoError(t, err)

	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 3, "only the two models and the spec file, no temporaries")

	_, _, err = Ensure(dir, "../x", TinyLM(), TinyClip())
	assert.ErrorContains(t, err, "bad cache name")
}

func TestMidPairGeneration(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~80 MB")
	}
	lm, clip, err := PresetPair("mid")
	require.NoError(t, err)
	start := time.Now()
	_, mmPath, err := WritePair(t.TempDir(), lm, clip)
	require.NoError(t, err)
	t.Logf("mid pair generated in %v", time.Since(start))
	f, err := gguf.Open(mmPath)
	require.NoError(t, err)
	defer f.Close()
	w, err := f.ReadTensorFloat32("v.blk.2.ffn_up.weight") // fc2: fan-in 4096
	require.NoError(t, err)
	_, std := stats(w)
	assert.InEpsilon(t, 1/64.0, std, 0.02)
	ti, _ := f.Tensor("v.blk.2.ffn_up.weight")
	assert.Equal(t, gguf.TypeF16, ti.Type)
}

func TestSampleImage(t *testing.T) {
	a := SampleImage(336, 336, 7)
	b := SampleImage(336, 336, 7)
	c := SampleImage(336, 336, 8)
	pa, err := EncodePNG(a)
	require.NoError(t, err)
	pb, _ := EncodePNG(b)
	pc, _ := EncodePNG(c)
	assert.True(t, bytes.Equal(pa, pb), "deterministic")
	assert.False(t, bytes.Equal(pa, pc), "seed matters")
	assert.Equal(t, 336, a.Bounds().Dx())
	assert.Equal(t, 200, SampleImage(200, 120, 1).Bounds().Dx())
	assert.Equal(t, 120, SampleImage(200, 120, 1).Bounds().Dy())

	colours := map[[3]uint32]int{}
	for y := 0; y < 336; y += 4 {
		for x := 0; x < 336; x += 4 {
			r, g, b, _ := a.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	assert.Greater(t, len(colours), 50, "gradient plus shapes")

	dir := t.TempDir()
	require.NoError(t, WritePNG(filepath.Join(dir, "a.png"), a))
	require.NoError(t, WriteJPEG(filepath.Join(dir, "a.jpg"), a, 0))
	for _, n := range []string{"a.png", "a.jpg"} {
		st, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(1000))
	}
}

// FeatureLayer writes clip.vision.feature_layer as the current legacy
// converter does (an int32 array holding one non-negative hidden-state
// index) and changes nothing else; zero keeps the earlier files and cache
// hashes.
func TestMMProjFeatureLayer(t *testing.T) {
	base := TinyClip()
	withKey := base
	withKey.FeatureLayer = base.NLayer
	dir := t.TempDir()
	paths := map[string]string{"none": filepath.Join(dir, "none.gguf"), "key": filepath.Join(dir, "key.gguf")}
	require.NoError(t, WriteMMProj(paths["none"], base))
	require.NoError(t, WriteMMProj(paths["key"], withKey))

	f, err := gguf.Open(paths["key"])
	require.NoError(t, err)
	defer f.Close()
	kv, ok := f.Get("clip.vision.feature_layer")
	require.True(t, ok)
	assert.Equal(t, gguf.ValArray, kv.Type)
	assert.Equal(t, gguf.ValInt32, kv.ElemType, "llama.cpp reads it as int32 (clip.cpp get_arr_int)")
	assert.Equal(t, []int32{12}, kv.Value)
	bc, _ := f.Get("clip.vision.block_count")
	assert.Equal(t, uint32(12), bc.Value, "block_count is unchanged")

	g, err := gguf.Open(paths["none"])
	require.NoError(t, err)
	defer g.Close()
	_, ok = g.Get("clip.vision.feature_layer")
	assert.False(t, ok)
	require.Len(t, f.Tensors, len(g.Tensors))
	for i := range g.Tensors {
		assert.Equal(t, g.Tensors[i].Name, f.Tensors[i].Name)
		a, err := g.ReadTensor(g.Tensors[i].Name)
		require.NoError(t, err)
		b, err := f.ReadTensor(f.Tensors[i].Name)
		require.NoError(t, err)
		assert.Equal(t, a, b, "tensor %s", g.Tensors[i].Name)
	}
	assert.Len(t, f.KV, len(g.KV)+1)

	// The zero value is left out of the spec record, so the hashes (and the
	// cached files) of every existing spec stay as they were.
	rec, err := json.Marshal(base)
	require.NoError(t, err)
	assert.NotContains(t, string(rec), "FeatureLayer")
	assert.NotEqual(t, SpecHash(TinyLM(), base), SpecHash(TinyLM(), withKey))
}
