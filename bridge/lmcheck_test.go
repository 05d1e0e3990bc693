package bridge_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// What the pinned llama.cpp does with a mutated file when nothing checks it
// first, as TestLMCheckBefore observes it.
const (
	beforeAbort = "abort" // the process dies (GGML_ASSERT, std::terminate or SIGSEGV)
	beforeNaN   = "nan"   // loads and decodes, every logit NaN or Inf
	beforeRuns  = "runs"  // loads and decodes finite logits (value ignored, read past an array, or harmless)
	beforeClean = "clean" // llama.cpp refuses it with its own (logged) error
	beforeHang  = "hang"  // it never finishes (TestLMCheckBefore gives up after 10 s)
)

type lmMutation struct {
	name   string
	path   string
	key    string // the key the error must name; "" when the file must load
	want   string // further text the error must contain
	before string
}

// probePrompt has text the tiny vocabulary can only spell with byte pieces.
const probePrompt = "Hello world, what is in the picture? é€ zq"

// perLayer re-declares a tensor of every layer with another shape (data is
// zero-filled), so that a header change stays consistent with the tensors
// and reaches llama.cpp's graph instead of its shape check.
func perLayer(nLayer int, suffix string, ne ...int64) map[string][]int64 {
	m := map[string][]int64{}
	for i := 0; i < nLayer; i++ {
		m[fmt.Sprintf("blk.%d.%s", i, suffix)] = ne
	}
	return m
}

func merged(ms ...map[string][]int64) map[string][]int64 {
	out := map[string][]int64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// lmMutations derives bad (and tolerated) language models from the tiny
// generated one: 64 wide, 2 layers, 4 heads of 16, FFN 128, llama tokenizer.
func lmMutations(t *testing.T) []lmMutation {
	t.Helper()
	lm, _ := fixture.Pair(t, "tiny")
	f, err := gguf.Open(lm)
	require.NoError(t, err)
	kv, ok := f.Get("tokenizer.ggml.tokens")
	require.True(t, ok)
	toks := append([]string(nil), kv.Value.([]string)...)
	kv, _ = f.Get("tokenizer.ggml.scores")
	scores := append([]float32(nil), kv.Value.([]float32)...)
	kv, _ = f.Get("tokenizer.ggml.token_type")
	types := append([]int32(nil), kv.Value.([]int32)...)
	require.NoError(t, f.Close())
	nv := uint32(len(toks))
	dir := t.TempDir()

	var out []lmMutation
	add := func(name, before, key, want string, e fixture.Edit) {
		path := fixture.Mutate(t, lm, dir, strings.NewReplacer(" ", "_", "/", "_").Replace(name)+".gguf", e)
		out = append(out, lmMutation{name: name, path: path, key: key, want: want, before: before})
	}
	set := func(kvs ...any) fixture.Edit {
		e := fixture.Edit{Set: map[string]any{}}
		for i := 0; i < len(kvs); i += 2 {
			e.Set[kvs[i].(string)] = kvs[i+1]
		}
		return e
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	const (
		a   = "llama."
		eps = a + "attention.layer_norm_rms_epsilon"
		hc  = a + "attention.head_count"
		hkv = a + "attention.head_count_kv"
		ff  = a + "feed_forward_length"
		rd  = a + "rope.dimension_count"
		kl  = a + "attention.key_length"
		vl  = a + "attention.value_length"
		fb  = a + "rope.freq_base"
	)
	// 4 heads of 15 (60 wide attention) instead of 16.
	heads60 := merged(perLayer(2, "attn_q.weight", 64, 60), perLayer(2, "attn_k.weight", 64, 60),
		perLayer(2, "attn_v.weight", 64, 60), perLayer(2, "attn_output.weight", 60, 64))

	// Counts.
	add("block_count 0", beforeAbort, a+"block_count", "= 0: must be between 1 and 512", set(a+"block_count", uint32(0)))
	add("block_count 513", beforeClean, a+"block_count", "= 513: must be between 1 and 512", set(a+"block_count", uint32(513)))
	add("block_count 1000", beforeClean, a+"block_count", "= 1000: must be between 1 and 512", set(a+"block_count", uint32(1000)))
	add("block_count int32", beforeClean, a+"block_count", "= 2 (i32): must be a uint32", set(a+"block_count", int32(2)))
	add("embedding_length 0", beforeClean, a+"embedding_length", "= 0: must be >= 1", set(a+"embedding_length", uint32(0)))
	add("embedding_length 48", beforeClean, a+"embedding_length", "= 48: must be the width of token_embd.weight [64 ",
		set(a+"embedding_length", uint32(48)))
	add("feed_forward_length 0", beforeClean, ff, "= 0: must be >= 1", set(ff, uint32(0)))
	add("feed_forward_length float array", beforeAbort, ff, "= [128 128] (array of f32): must be a uint32 or an array of 2",
		set(ff, []float32{128, 128}))
	add("feed_forward_length per layer", beforeRuns, ff, "= [128 64]: must be the same in every layer", set(ff, []uint32{128, 64}))

	// Epsilons.
	add("rms eps -1", beforeAbort, eps, "= -1: must be a finite number >= 0", set(eps, float32(-1)))
	add("rms eps -1e-6", beforeAbort, eps, "= -1e-06: must be a finite number >= 0", set(eps, float32(-1e-6)))
	add("rms eps NaN", beforeAbort, eps, "= NaN: must be a finite number >= 0", set(eps, nan))
	add("rms eps +Inf", beforeRuns, eps, "= +Inf: must be a finite number >= 0", set(eps, inf))
	add("rms eps missing", beforeClean, eps, "is missing", fixture.Edit{Delete: []string{eps}})
	add("layer_norm eps NaN", beforeRuns, a+"attention.layer_norm_epsilon", "= NaN: must be a finite number >= 0",
		set(a+"attention.layer_norm_epsilon", nan))

	// Heads.
	add("head_count 0", beforeClean, hc, "= 0: must be >= 1", set(hc, uint32(0)))
	add("head_count 12 does not divide 64", beforeClean, hc,
		"= 12: must divide llama.embedding_length 64 when llama.attention.key_length is absent", set(hc, uint32(12)))
	add("head_count 5 does not divide 64, tensors to match", beforeRuns, hc, "= 5: must divide llama.embedding_length 64",
		fixture.Edit{Set: map[string]any{hc: uint32(5), hkv: uint32(5), rd: uint32(12)}, Reshape: heads60})
	add("head_count per layer", beforeRuns, hc, "= [4 8]: must be the same in every layer", set(hc, []uint32{4, 8}))
	add("head_count float array", beforeAbort, hc, "= [4 4] (array of f32): must be a uint32 or an array of 2", set(hc, []float32{4, 4}))
	add("head_count string array", beforeAbort, hc, "(array of str): must be a uint32 or an array of 2", set(hc, []string{"4", "4"}))
	add("head_count array of 3", beforeClean, hc, "= [4 4 4] (array of u32): must be a uint32 or an array of 2 (llama.block_count)",
		set(hc, []uint32{4, 4, 4}))
	add("head_count negative", beforeRuns, hc, "= [4 -1] (array of i32): must be a uint32 or an array of 2", set(hc, []int32{4, -1}))
	add("head_count_kv 0", beforeClean, hkv, "= 0: must be >= 1", set(hkv, uint32(0)))
	add("head_count_kv 3", beforeClean, hkv, "= 3: must divide llama.attention.head_count 4", set(hkv, uint32(3)))
	add("head_count_kv 3, tensors to match", beforeAbort, hkv, "= 3: must divide llama.attention.head_count 4", fixture.Edit{
		Set: map[string]any{hkv: uint32(3)}, Reshape: merged(perLayer(2, "attn_k.weight", 64, 48), perLayer(2, "attn_v.weight", 64, 48))})
	add("head_count_kv 8 above head_count, tensors to match", beforeAbort, hkv, "= 8: must divide llama.attention.head_count 4", fixture.Edit{
		Set: map[string]any{hkv: uint32(8)}, Reshape: merged(perLayer(2, "attn_k.weight", 64, 128), perLayer(2, "attn_v.weight", 64, 128))})
	add("head_count_kv per layer", beforeAbort, hkv, "= [4 2]: must be the same in every layer", set(hkv, []uint32{4, 2}))
	add("head_count_kv per layer, tensors to match", beforeClean, hkv, "= [4 2]: must be the same in every layer", fixture.Edit{
		Set: map[string]any{hkv: []uint32{4, 2}}, Reshape: map[string][]int64{"blk.1.attn_k.weight": {64, 32}, "blk.1.attn_v.weight": {64, 32}}})
	add("key_length 0", beforeClean, kl, "= 0: must be >= 1", set(kl, uint32(0)))
	add("value_length 32, tensors to match", beforeAbort, vl, "= 32: must equal the key head size 16",
		fixture.Edit{Set: map[string]any{vl: uint32(32)}, Reshape: perLayer(2, "attn_v.weight", 64, 128)})
	add("key_length 32 without value_length, tensors to match", beforeAbort, vl,
		"= 16 (not set; llama.cpp's default): must equal the key head size 32", fixture.Edit{
			Set: map[string]any{kl: uint32(32), rd: uint32(32)},
			Reshape: merged(perLayer(2, "attn_q.weight", 64, 128), perLayer(2, "attn_k.weight", 64, 128),
				perLayer(2, "attn_output.weight", 128, 64))})

	// RoPE.
	add("rope dimension 8", beforeClean, rd, "= 8: must equal the head size 16", set(rd, uint32(8)))
	add("rope dimension 0", beforeClean, rd, "= 0: must equal the head size 16", set(rd, uint32(0)))
	add("rope dimension 1 (64 heads of 1)", beforeAbort, rd, "= 1: must be even", set(hc, uint32(64), hkv, uint32(64), rd, uint32(1)))
	add("rope dimension 15 (heads of 15)", beforeAbort, rd, "= 15: must be even",
		fixture.Edit{Set: map[string]any{kl: uint32(15), vl: uint32(15), rd: uint32(15)}, Reshape: heads60})
	add("rope dimension absent, heads of 15", beforeAbort, rd, "= 15 (not set; llama.cpp's default): must be even",
		fixture.Edit{Set: map[string]any{kl: uint32(15), vl: uint32(15)}, Delete: []string{rd}, Reshape: heads60})
	add("freq_base NaN", beforeNaN, fb, "= NaN: must be a finite number > 0", set(fb, nan))
	add("freq_base 0", beforeNaN, fb, "= 0: must be a finite number > 0", set(fb, float32(0)))
	add("freq_base -1", beforeNaN, fb, "= -1: must be a finite number > 0", set(fb, float32(-1)))
	add("freq_base +Inf", beforeRuns, fb, "= +Inf: must be a finite number > 0", set(fb, inf))
	add("rope scaling type unknown", beforeAbort, a+"rope.scaling.type", `= "bogus": must be one of none, linear, yarn, longrope`,
		set(a+"rope.scaling.type", "bogus"))
	add("rope scaling factor NaN", beforeNaN, a+"rope.scaling.factor", "= NaN: must be a finite number >= 0", set(a+"rope.scaling.factor", nan))
	add("rope scaling factor -2", beforeRuns, a+"rope.scaling.factor", "= -2: must be a finite number >= 0", set(a+"rope.scaling.factor", float32(-2)))
	add("rope scale_linear +Inf", beforeRuns, a+"rope.scale_linear", "= +Inf: must be a finite number >= 0", set(a+"rope.scale_linear", inf))
	add("rope attn_factor NaN", beforeNaN, a+"rope.scaling.attn_factor", "= NaN: must be a finite number > 0", set(a+"rope.scaling.attn_factor", nan))
	add("rope attn_factor 0", beforeRuns, a+"rope.scaling.attn_factor", "= 0: must be a finite number > 0", set(a+"rope.scaling.attn_factor", float32(0)))
	add("yarn beta NaN", beforeRuns, a+"rope.scaling.yarn_beta_fast", "= NaN: must be finite", set(a+"rope.scaling.yarn_beta_fast", nan))
	add("other float +Inf", beforeRuns, a+"attention.scale", "= +Inf: must be finite", set(a+"attention.scale", inf))

	// Experts.
	add("expert_count 1000", beforeAbort, a+"expert_count", "= 1000: must be <= 512", set(a+"expert_count", uint32(1000)))
	add("expert_used_count without experts", beforeAbort, a+"expert_used_count", "= 2: must be 0 when llama.expert_count is 0",
		set(a+"expert_used_count", uint32(2)))
	add("expert_count 4 without expert_used_count", beforeAbort, a+"expert_used_count",
		"= 0 (not set; llama.cpp's default): must be >= 1 when llama.expert_count is 4", set(a+"expert_count", uint32(4)))
	add("expert_used_count above expert_count", beforeAbort, a+"expert_used_count", "= 5: must be <= llama.expert_count 4",
		set(a+"expert_count", uint32(4), a+"expert_used_count", uint32(5)))
	add("expert_group_count 3 of 4", beforeAbort, a+"expert_group_count", "= 3: must divide llama.expert_count 4",
		set(a+"expert_count", uint32(4), a+"expert_used_count", uint32(2), a+"expert_group_count", uint32(3)))
	add("expert_group_count without experts", beforeAbort, a+"expert_group_count", "= 1: must be 0 when llama.expert_count is 0",
		set(a+"expert_group_count", uint32(1)))
	add("expert groups without expert_group_used_count", beforeAbort, a+"expert_group_used_count",
		"= 0 (not set; llama.cpp's default): must be between 1 and llama.expert_group_count - 1 = 1",
		set(a+"expert_count", uint32(4), a+"expert_used_count", uint32(2), a+"expert_group_count", uint32(2)))

	// Vocabulary and its tensors.
	add("tokens one short", beforeClean, "tokenizer.ggml.tokens", "= [5820 strings]: must have one piece per row of token_embd.weight",
		set("tokenizer.ggml.tokens", toks[:nv-1], "tokenizer.ggml.scores", scores[:nv-1], "tokenizer.ggml.token_type", types[:nv-1]))
	add("token_embd rows", beforeClean, "tokenizer.ggml.tokens", "must have one piece per row of token_embd.weight [64 5824]",
		fixture.Edit{Reshape: map[string][]int64{"token_embd.weight": {64, int64(nv) + 3}}})
	add("output rows", beforeClean, "tokenizer.ggml.tokens", "must have one piece per row of output.weight [64 5822]",
		fixture.Edit{Reshape: map[string][]int64{"output.weight": {64, int64(nv) + 1}}})
	add("tokens empty", beforeAbort, "tokenizer.ggml.tokens", "= [0 strings]: must not be empty",
		set("tokenizer.ggml.tokens", []string{}, "tokenizer.ggml.scores", []float32{}, "tokenizer.ggml.token_type", []int32{}))
	add("tokens float array", beforeAbort, "tokenizer.ggml.tokens", "(array of f32): must be an array of strings", set("tokenizer.ggml.tokens", scores))
	add("tokens string", beforeAbort, "tokenizer.ggml.tokens", `= "hello" (str): must be an array of strings`, set("tokenizer.ggml.tokens", "hello"))
	add("empty piece repeats another", beforeAbort, "tokenizer.ggml.tokens", `vocabulary piece "[EMPTY_5820]" appears twice (tokens 5819 and 5820)`,
		set("tokenizer.ggml.tokens", emptyCollides(toks)))
	add("no byte pieces", beforeAbort, "tokenizer.ggml.tokens", `has no byte piece "<0x00>"`, set("tokenizer.ggml.tokens", renameBytePieces(toks)))
	add("scores short", beforeRuns, "tokenizer.ggml.scores", "= [10 floats]: must have one value per token (5821)", set("tokenizer.ggml.scores", scores[:10]))
	add("scores empty", beforeRuns, "tokenizer.ggml.scores", "= []: must have one value per token (5821)", set("tokenizer.ggml.scores", []float32{}))
	add("scores strings", beforeRuns, "tokenizer.ggml.scores", "(array of str): must be an array of float32", set("tokenizer.ggml.scores", toks))
	add("token_type short", beforeRuns, "tokenizer.ggml.token_type", "= [10 int32s]: must have one value per token (5821)",
		set("tokenizer.ggml.token_type", types[:10]))
	add("token_type float array", beforeRuns, "tokenizer.ggml.token_type", "(array of f32): must be an array of int32", set("tokenizer.ggml.token_type", scores))
	add("merges float array", beforeAbort, "tokenizer.ggml.merges", "= [1 2] (array of f32): must be an array of strings",
		set("tokenizer.ggml.model", "gpt2", "tokenizer.ggml.merges", []float32{1, 2}))
	add("tokenizer unknown", beforeClean, "tokenizer.ggml.model", `= "bogus": must be one of llama, gpt2, bert, t5, rwkv, plamo2`,
		set("tokenizer.ggml.model", "bogus"))
	add("tokenizer no_vocab", beforeAbort, "tokenizer.ggml.model", `= "no_vocab": must name a tokenizer`, set("tokenizer.ggml.model", "no_vocab"))
	add("add_bos without a BOS token", beforeAbort, "tokenizer.ggml.add_bos_token",
		`= true: needs tokenizer.ggml.bos_token_id inside the vocabulary (the "t5" tokenizer has no default)`, fixture.Edit{
			Set: map[string]any{"tokenizer.ggml.model": "t5", "tokenizer.ggml.add_bos_token": true}, Delete: []string{"tokenizer.ggml.bos_token_id"}})
	add("byte piece in a bert vocabulary", beforeAbort, "tokenizer.ggml.token_type", `must have no byte pieces (type 6) with the "bert" tokenizer (token 3 is one)`,
		set("tokenizer.ggml.model", "bert"))
	// A short piece makes llama.cpp throw while loading; a long one loads
	// and renders as a garbage byte.
	for _, tok := range []struct {
		model  string
		id     int
		before string
	}{{"llama", 300, beforeClean}, {"llama", int(nv) - 1, beforeRuns}, {"t5", 300, beforeClean}} {
		typed := append([]int32(nil), types...)
		typed[tok.id] = 6 // BYTE, on a piece that is not spelled <0xHH>
		add(fmt.Sprintf("byte type on a plain %s piece %d", tok.model, tok.id), tok.before, "tokenizer.ggml.token_type",
			fmt.Sprintf("marks token %d (%q) as a byte piece (type 6), but byte pieces are spelled <0xHH>", tok.id, toks[tok.id]),
			set("tokenizer.ggml.model", tok.model, "tokenizer.ggml.token_type", typed))
	}
	add("rwkv vocabulary without single bytes", beforeHang, "tokenizer.ggml.tokens",
		"has pieces starting with byte 0x", set("tokenizer.ggml.model", "rwkv"))
	add("bos id int32", beforeClean, "tokenizer.ggml.bos_token_id", "= 1 (i32): must be a uint32", set("tokenizer.ggml.bos_token_id", int32(1)))

	// The file itself.
	add("a projector as the model", beforeClean, "general.architecture", `= "clip": this is a vision projector (--mmproj), not a language model`,
		set("general.architecture", "clip"))
	add("no architecture", beforeClean, "general.architecture", "is missing", fixture.Edit{Delete: []string{"general.architecture"}})

	// Tolerated by llama.cpp and accepted here: it ignores, replaces or
	// never needs these values.
	add("context_length 0", beforeRuns, "", "", set(a+"context_length", uint32(0)))
	add("context_length max", beforeRuns, "", "", set(a+"context_length", uint32(math.MaxUint32)))
	add("vocab_size differs from tokens", beforeRuns, "", "", set(a+"vocab_size", nv+5))
	add("bos id outside the vocabulary", beforeRuns, "", "", set("tokenizer.ggml.bos_token_id", nv))
	add("eos id max", beforeRuns, "", "", set("tokenizer.ggml.eos_token_id", uint32(math.MaxUint32)))
	add("yarn without original context", beforeRuns, "", "",
		set(a+"rope.scaling.type", "yarn", a+"rope.scaling.factor", float32(4), a+"rope.scaling.original_context_length", uint32(0)))
	add("rope dimension and key_length agree", beforeRuns, "", "", set(kl, uint32(16), vl, uint32(16), rd, uint32(16)))
	add("gpt2 tokenizer with merges", beforeRuns, "", "", set("tokenizer.ggml.model", "gpt2", "tokenizer.ggml.merges", []string{"a b"}))
	return out
}

func renameBytePieces(toks []string) []string {
	out := append([]string(nil), toks...)
	for i, s := range out {
		if len(s) == 6 && strings.HasPrefix(s, "<0x") {
			out[i] = "byte-" + s[3:5]
		}
	}
	return out
}

// emptyCollides empties the last piece, which llama.cpp renames to
// "[EMPTY_<id>]", and gives the piece before it that very name.
func emptyCollides(toks []string) []string {
	out := append([]string(nil), toks...)
	i := len(out) - 1
	out[i] = ""
	out[i-1] = fmt.Sprintf("[EMPTY_%d]", i)
	return out
}

// decodeChecked loads path through the bridge and decodes probePrompt,
// returning the error or the number of non-finite logits.
func decodeChecked(path string) (int, error) {
	m, err := bridge.LoadModel(path, bridge.ModelParams{})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	c, err := bridge.NewContext(m, bridge.ContextParams{NCtx: 512, Threads: 2})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	toks, err := m.Tokenize(probePrompt, true, true)
	if err != nil {
		return 0, err
	}
	if err := c.DecodeTokens(toks, 0, true); err != nil {
		return 0, err
	}
	return nonFinite(c.Logits()), nil
}

func nonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// Every bad file is refused before llama.cpp sees it, with ErrFormat and a
// message naming the file, the key, its value and what it must be; the
// tolerated ones load and decode finite logits.
func TestLoadModelRefusesBadHyperparameters(t *testing.T) {
	for _, mu := range lmMutations(t) {
		t.Run(mu.name, func(t *testing.T) {
			if mu.key == "" {
				bad, err := decodeChecked(mu.path)
				require.NoError(t, err)
				assert.Zero(t, bad, "non-finite logits")
				return
			}
			_, err := bridge.LoadModel(mu.path, bridge.ModelParams{})
			require.ErrorIs(t, err, bridge.ErrFormat)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "model: "+mu.path+": "+mu.key+" "), "message %q does not start with the file and key", msg)
			assert.Contains(t, msg, mu.want)
		})
	}
}

// The generated models and the shipped testbed model still load and
// decode.
func TestLoadModelAcceptsValidModels(t *testing.T) {
	tiny, _ := fixture.Pair(t, "tiny")
	mid, _ := fixture.Pair(t, "mid")
	for _, path := range []string{tiny, mid, filepath.Join("..", "tests", "testbed", "model", "lm.gguf")} {
		bad, err := decodeChecked(path)
		require.NoError(t, err, path)
		assert.Zero(t, bad, "%s: non-finite logits", path)
	}
}

// lmChild is the body of the child processes below: it decodes each file
// named in HIPRUNE_LMCHECK_FILES (one per line) through the bridge, or,
// with HIPRUNE_LMCHECK_RAW set, through ollama's plain llama.cpp binding
// (no Go checks), and prints one RESULT line per file.
func TestLMCheckChild(t *testing.T) {
	files := os.Getenv("HIPRUNE_LMCHECK_FILES")
	if files == "" {
		t.Skip("runs only as the child of TestLoadModelBadFilesExitCleanly and TestLMCheckBefore")
	}
	for _, path := range strings.Split(files, "\n") {
		var bad int
		var err error
		if os.Getenv("HIPRUNE_LMCHECK_RAW") != "" {
			bad, err = decodeRaw(path)
		} else {
			bad, err = decodeChecked(path)
		}
		if err != nil {
			fmt.Printf("RESULT %s\terror\t%v\n", path, err)
		} else {
			fmt.Printf("RESULT %s\tok\t%d non-finite\n", path, bad)
		}
	}
}

func decodeRaw(path string) (int, error) {
	llama.BackendInit()
	m, err := llama.LoadModelFromFile(path, llama.ModelParams{UseMmap: true})
	if err != nil {
		return 0, err
	}
	defer llama.FreeModel(m)
	ctx, err := llama.NewContextWithModel(m, llama.NewContextParams(512, 512, 1, 2, ml.FlashAttentionAuto, ""))
	if err != nil {
		return 0, err
	}
	toks, err := m.Tokenize(probePrompt, true, true)
	if err != nil {
		return 0, err
	}
	b, err := llama.NewBatch(512, 1, 0)
	if err != nil {
		return 0, err
	}
	defer b.Free()
	for i, tk := range toks {
		b.Add(tk, nil, i, i == len(toks)-1, 0)
	}
	if err := ctx.Decode(b); err != nil {
		return 0, err
	}
	return nonFinite(ctx.GetLogitsIth(len(toks) - 1)), nil
}

// runLMChild runs TestLMCheckChild over paths and returns its combined
// output and error.
func runLMChild(t *testing.T, raw bool, timeout time.Duration, paths ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := emulator.CommandContext(ctx, os.Args[0], "-test.run=^TestLMCheckChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HIPRUNE_LMCHECK_FILES="+strings.Join(paths, "\n"), "GGML_NO_BACKTRACE=1")
	if raw {
		cmd.Env = append(cmd.Env, "HIPRUNE_LMCHECK_RAW=1")
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The files that abort (or crash, or hang) llama.cpp's loader, tokenizer,
// first graph or first decode now end with an error in a process that
// keeps running: one child loads and decodes all of them in turn.
func TestLoadModelBadFilesExitCleanly(t *testing.T) {
	var paths []string
	for _, mu := range lmMutations(t) {
		if mu.before == beforeAbort || mu.before == beforeHang {
			paths = append(paths, mu.path)
		}
	}
	require.GreaterOrEqual(t, len(paths), 20)
	out, err := runLMChild(t, false, 2*time.Minute, paths...)
	require.NoError(t, err, "child died:\n%s", out)
	for _, bad := range []string{"GGML_ASSERT", "SIGABRT", "SIGSEGV", "goroutine ", "terminate called"} {
		assert.NotContains(t, out, bad)
	}
	for _, p := range paths {
		assert.Contains(t, out, "RESULT "+p+"\terror\tmodel: "+p+": ")
	}
}

// TestLMCheckBefore records what the pinned llama.cpp does with each bad
// file when nothing checks it first (the evidence behind each rule in
// lmcheck.go). It runs one child per file, since most of them kill their
// process; set HIPRUNE_LMCHECK_BEFORE=1 to run it.
func TestLMCheckBefore(t *testing.T) {
	if os.Getenv("HIPRUNE_LMCHECK_BEFORE") == "" {
		t.Skip("set HIPRUNE_LMCHECK_BEFORE=1 to observe plain llama.cpp on every bad file")
	}
	for _, mu := range lmMutations(t) {
		t.Run(mu.name, func(t *testing.T) {
			out, err := runLMChild(t, true, 10*time.Second, mu.path)
			got := beforeRuns
			switch {
			case strings.Contains(fmt.Sprint(err), "signal: killed"): // the timeout
				got = beforeHang
			case err != nil:
				got = beforeAbort
			case strings.Contains(out, "\terror\t"):
				got = beforeClean
			case !strings.Contains(out, "\t0 non-finite"):
				got = beforeNaN
			}
			assert.Equal(t, mu.before, got, "%v\n%s", err, lastLines(out, 6))
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
