package bridge

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// This file checks a language model's hyper-parameters in Go before
// llama.cpp reads them. The pinned llama.cpp (ollama v0.17.4, commit
// ec98e2002) validates some of them with a clean error, but aborts the whole
// process on others: GGML_ASSERTs in llama_model::load_hparams, in the
// vocabulary loader and tokenizer, in the first graph and in the CPU kernels
// the first decode runs. Others again load and then give NaN logits. Every
// rule below names the llama.cpp source that reads the key and what goes
// wrong without the rule; rules marked "clean" only replace llama.cpp's own
// error (logged, not returned) with a message naming the key.
//
// Rules with arch "" hold for every architecture llama.cpp knows: they come
// from the architecture-independent part of load_hparams (llama-model.cpp
// 480-625), from the vocabulary loader (llama-vocab.cpp) and from ggml's
// kernels. Rules with arch "llama" come from that architecture's case in
// load_hparams, its tensors in load_tensors and its graph (models/llama.cpp),
// the only language-model architecture of the LLaVA files this project
// serves; other architectures get the general rules only.

// kvType is the GGUF type a key must have, as llama.cpp reads it.
type kvType int

const (
	kvU32    kvType = iota // get_key<uint32_t> wants exactly uint32 (else it throws)
	kvF32                  // get_key<float> wants exactly float32
	kvBool                 // bool
	kvStr                  // string
	kvLayers               // get_key_or_arr: a uint32, or one int32/uint32 per layer
	kvStrs                 // array of strings
	kvF32s                 // array of float32
	kvInts                 // array of int32 (uint32 has the same bits)
)

// lmRule is one hyper-parameter check. Keys spell the architecture as
// "{arch}" (general.architecture).
type lmRule struct {
	key  string
	typ  kvType
	arch string // "" for every architecture, else only this one
	need bool   // llama.cpp refuses the file without the key
	// dflt is the value llama.cpp uses when the key is absent, when that
	// value must obey check too; nil leaves an absent key unchecked.
	dflt func(c *lmCtx) any
	// check says what v must be ("must be ..."), or "" when v is allowed.
	check func(c *lmCtx, v any) string
	src   string // llama.cpp source that reads the key and what goes wrong
}

// maxLayers and maxExperts are LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS
// (llama-hparams.h): the sizes of llama.cpp's per-layer and expert arrays.
const (
	maxLayers  = 512
	maxExperts = 512
)

type specialDefaults struct{ bos, eos int64 }

// tokenizerDefaults are the special tokens llama.cpp assumes per
// tokenizer.ggml.model when the file names none (llama-vocab.cpp 1715-1800,
// "default special tokens"); -1 is none.
var tokenizerDefaults = map[string]specialDefaults{
	"llama":  {1, 2},
	"bert":   {101, -1},
	"gpt2":   {11, 11},
	"t5":     {-1, 1},
	"rwkv":   {-1, -1},
	"plamo2": {1, 2},
}

// specialTokenKeys are the ids llama.cpp reads as uint32 (llama-vocab.cpp
// 2120-2155). An id outside the vocabulary is ignored with a warning and
// the tokenizer's default kept, so only the type is checked here.
var specialTokenKeys = []string{
	"bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask",
	"fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle",
}

var lmRules = buildLMRules()

func buildLMRules() []lmRule {
	rules := []lmRule{
		{key: "general.architecture", typ: kvStr, need: true, check: func(_ *lmCtx, v any) string {
			if v.(string) == "clip" {
				return "this is a vision projector (--mmproj), not a language model"
			}
			return ""
		}, src: "llama-model.cpp:473 load_arch; clip: llama.cpp:778 (clean)"},

		// load_hparams, the part before the per-architecture switch
		// (llama-model.cpp:480-625), with the llama case and the llama
		// tensors and graph next to the key they constrain.
		{key: "{arch}.context_length", typ: kvU32, need: true,
			src: "llama-model.cpp:503 (clean when missing; any value loads and runs)"},
		{key: "{arch}.embedding_length", typ: kvU32, need: true, check: atLeast(1),
			src: "llama-model.cpp:504; 0 leaves every tensor shape wrong (clean)"},
		{key: "{arch}.embedding_length", typ: kvU32, arch: "llama", check: func(c *lmCtx, v any) string {
			if t, ok := c.f.Tensor("token_embd.weight"); ok && len(t.Ne) > 0 && t.Ne[0] != int64(v.(uint32)) {
				return fmt.Sprintf("must be the width of token_embd.weight %v", t.Ne)
			}
			return ""
		}, src: "load_tensors shapes, llama-model.cpp:2640 (clean)"},
		{key: "{arch}.block_count", typ: kvU32, need: true, check: between(1, maxLayers),
			src: "llama-model.cpp:505; 0 aborts in llama_hparams::n_head(0) (llama-hparams.cpp:35), > 512 overflows the per-layer arrays (clean throw, llama-model-loader.cpp:432)"},
		{key: "{arch}.expert_count", typ: kvU32, check: atMost(maxExperts),
			src: "llama-model.cpp:521 GGML_ASSERT(n_expert <= LLAMA_MAX_EXPERTS)"},
		{key: "{arch}.expert_used_count", typ: kvU32, dflt: zero, check: func(c *lmCtx, v any) string {
			used, n := v.(uint32), c.u32("{arch}.expert_count")
			switch {
			case n == 0 && used != 0:
				return fmt.Sprintf("must be 0 when %s is 0 or absent (no experts)", c.k("{arch}.expert_count"))
			case used > n:
				return fmt.Sprintf("must be <= %s %d", c.k("{arch}.expert_count"), n)
			case n > 0 && used == 0:
				return fmt.Sprintf("must be >= 1 when %s is %d", c.k("{arch}.expert_count"), n)
			}
			return ""
		}, src: "llama-model.cpp:522-532 GGML_ASSERTs on n_expert_used"},
		{key: "{arch}.expert_group_count", typ: kvU32, dflt: zero, check: func(c *lmCtx, v any) string {
			g, n := v.(uint32), c.u32("{arch}.expert_count")
			switch {
			case n == 0 && g != 0:
				return fmt.Sprintf("must be 0 when %s is 0 or absent (no experts)", c.k("{arch}.expert_count"))
			case n > 0 && g >= n:
				return fmt.Sprintf("must be < %s %d", c.k("{arch}.expert_count"), n)
			case g > 1 && n%g != 0:
				return fmt.Sprintf("must divide %s %d", c.k("{arch}.expert_count"), n)
			}
			return ""
		}, src: "llama-model.cpp:525-533 GGML_ASSERTs on n_expert_groups"},
		{key: "{arch}.expert_group_used_count", typ: kvU32, dflt: zero, check: func(c *lmCtx, v any) string {
			u, g := v.(uint32), c.u32("{arch}.expert_group_count")
			if c.u32("{arch}.expert_count") > 0 && g > 1 && (u == 0 || u >= g) {
				return fmt.Sprintf("must be between 1 and %s - 1 = %d", c.k("{arch}.expert_group_count"), g-1)
			}
			return ""
		}, src: "llama-model.cpp:528-529 GGML_ASSERTs on n_group_used"},

		{key: "{arch}.feed_forward_length", typ: kvLayers,
			src: "llama-model.cpp:552 get_key_or_arr: a float or string array aborts (llama-model-loader.cpp:350), a wrong length or another type throws (clean)"},
		{key: "{arch}.feed_forward_length", typ: kvLayers, arch: "llama", need: true, check: func(_ *lmCtx, v any) string {
			return uniformPositive(v.([]uint32))
		}, src: "load_tensors sizes every layer's FFN by layer 0's length (llama-model.cpp:2472, 2677)"},
		{key: "{arch}.attention.key_length", typ: kvU32, check: atLeast(1),
			src: "llama-model.cpp:596; 0 leaves the attention shapes wrong (clean)"},
		{key: "{arch}.attention.value_length", typ: kvU32, check: atLeast(1),
			src: "llama-model.cpp:599; 0 leaves the attention shapes wrong (clean)"},
		{key: "{arch}.attention.head_count", typ: kvLayers,
			src: "llama-model.cpp:553 get_key_or_arr (as feed_forward_length)"},
		{key: "{arch}.attention.head_count", typ: kvLayers, arch: "llama", need: true, check: func(c *lmCtx, v any) string {
			if msg := uniformPositive(v.([]uint32)); msg != "" {
				return msg
			}
			h, e := v.([]uint32)[0], c.u32("{arch}.embedding_length")
			if !c.has("{arch}.attention.key_length") && e%h != 0 {
				return fmt.Sprintf("must divide %s %d when %s is absent", c.k("{arch}.embedding_length"), e, c.k("{arch}.attention.key_length"))
			}
			return ""
		}, src: "0 skips the head sizes (llama-model.cpp:591) and leaves the shapes wrong; the llama tensors and graph use layer 0's count for every layer (llama-model.cpp:2465)"},
		{key: "{arch}.attention.head_count_kv", typ: kvLayers, check: func(c *lmCtx, v any) string {
			heads, kvs := c.layers("{arch}.attention.head_count"), v.([]uint32)
			for il, kv := range kvs {
				if il < len(heads) && kv > 0 && heads[il] > 0 && heads[il]%kv != 0 {
					return fmt.Sprintf("must divide %s %d%s", c.k("{arch}.attention.head_count"), heads[il], layerNote(il, heads, kvs))
				}
			}
			return ""
		}, src: "llama-model.cpp:558; grouped-query attention broadcasts K over Q: GGML_ASSERT(ggml_can_mul_mat(k, q)) in ggml_flash_attn_ext (ggml.c:5260; ggml_mul_mat, ggml.c:3183, without flash attention) aborts building the first graph when it does not divide"},
		{key: "{arch}.attention.head_count_kv", typ: kvLayers, arch: "llama", check: func(_ *lmCtx, v any) string {
			return uniformPositive(v.([]uint32))
		}, src: "the KV cache sizes each layer by its own count but the llama graph uses layer 0's: different counts abort building the first graph (ggml_set_rows writing K, ggml.c:3832)"},
		{key: "{arch}.attention.value_length", typ: kvU32, arch: "llama", dflt: embdPerHead, check: func(c *lmCtx, v any) string {
			if hk, ok := c.headK(); ok && v.(uint32) != hk {
				return fmt.Sprintf("must equal the key head size %d", hk)
			}
			return ""
		}, src: "models/llama.cpp:6 GGML_ASSERT(n_embd_head == hparams.n_embd_head_k) aborts building the first graph"},
		{key: "{arch}.rope.dimension_count", typ: kvU32, arch: "llama", dflt: headK, check: func(c *lmCtx, v any) string {
			if hk, ok := c.headK(); ok && v.(uint32) != hk {
				return fmt.Sprintf("must equal the head size %d", hk)
			}
			if v.(uint32)%2 != 0 {
				return "must be even (RoPE rotates pairs of dimensions)"
			}
			return ""
		}, src: "llama-model.cpp:608 invalid n_rot (clean) and models/llama.cpp:7; odd aborts the first decode (ggml-cpu/ops.cpp:5699)"},
		{key: "{arch}.rope.dimension_count", typ: kvU32, check: func(c *lmCtx, v any) string {
			n := v.(uint32)
			if n%2 != 0 {
				return "must be even (RoPE rotates pairs of dimensions)"
			}
			if hk, ok := c.headK(); ok && n > hk {
				return fmt.Sprintf("must be <= the head size %d", hk)
			}
			return ""
		}, src: "llama-model.cpp:604; odd aborts the first decode (ggml-cpu/ops.cpp:5699 GGML_ASSERT(n_dims % 2 == 0)), above the head size too (ops.cpp:5698)"},
		{key: "{arch}.rope.freq_base", typ: kvF32, check: finitePositive,
			src: "llama-model.cpp:569; NaN, 0 or negative make every logit NaN, +Inf stops the rotation"},
		{key: "{arch}.rope.scaling.type", typ: kvStr, check: func(_ *lmCtx, v any) string {
			switch v.(string) {
			case "none", "linear", "yarn", "longrope":
				return ""
			}
			return "must be one of none, linear, yarn, longrope"
		}, src: "llama-model.cpp:574 GGML_ASSERT(rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED)"},
		{key: "{arch}.rope.scaling.factor", typ: kvF32, check: finiteNonNegative,
			src: "llama-model.cpp:578, freq_scale = 1/factor (0 means none); NaN makes every logit NaN"},
		{key: "{arch}.rope.scale_linear", typ: kvF32, check: finiteNonNegative,
			src: "llama-model.cpp:580 (older name of rope.scaling.factor)"},
		{key: "{arch}.rope.scaling.attn_factor", typ: kvF32, check: finitePositive,
			src: "llama-model.cpp:588 scales every rotated value; NaN makes every logit NaN"},
		{key: "{arch}.rope.scaling.original_context_length", typ: kvU32, src: "llama-model.cpp:565 (clean)"},
		{key: "{arch}.rope.scaling.finetuned", typ: kvBool, src: "llama-model.cpp:561 (clean)"},
		{key: "{arch}.attention.layer_norm_epsilon", typ: kvF32, check: finiteNonNegative,
			src: "layer-norm kernel GGML_ASSERT(eps >= 0.0f) (ggml-cpu/ops.cpp:3597)"},
		{key: "{arch}.attention.layer_norm_rms_epsilon", typ: kvF32, check: finiteNonNegative,
			src: "rms_norm kernel GGML_ASSERT(eps >= 0.0f) aborts the first decode on a negative or NaN value (ggml-cpu/ops.cpp:3664); +Inf zeroes every activation"},
		{key: "{arch}.attention.layer_norm_rms_epsilon", typ: kvF32, arch: "llama", need: true,
			src: "llama-model.cpp:631 (clean when missing)"},
		{key: "{arch}.attention.group_norm_epsilon", typ: kvF32, check: finiteNonNegative,
			src: "group-norm kernel takes sqrt(variance + eps) (ggml-cpu/ops.cpp:3909): negative or NaN gives NaN"},
		{key: "{arch}.vocab_size", typ: kvU32, src: "llama-model.cpp:619 (only names the model size)"},

		// Vocabulary (llama_vocab::impl::load, llama-vocab.cpp:1682), read
		// for every architecture.
		{key: "tokenizer.ggml.model", typ: kvStr, need: true, check: func(_ *lmCtx, v any) string {
			switch m := v.(string); {
			case m == "none" || m == "no_vocab":
				return "must name a tokenizer: without one llama.cpp aborts on the first prompt"
			case !known(m):
				return "must be one of llama, gpt2, bert, t5, rwkv, plamo2"
			}
			return ""
		}, src: "llama-vocab.cpp:1819 unknown tokenizer (clean); none/no_vocab: GGML_ASSERT(tokenizer) when tokenizing (llama-vocab.cpp:2802)"},
		{key: "tokenizer.ggml.tokens", typ: kvStrs, need: true, check: checkTokens,
			src: "llama-vocab.cpp:2041-2089: not a string array aborts (gguf.cpp:818) or crashes, an empty one crashes, a repeated piece aborts (GGML_ASSERT at 2089), a SentencePiece vocabulary without the 256 byte pieces aborts on the first text it cannot spell (unordered_map::at in byte_to_token), an RWKV one without its pieces' first bytes hangs tokenizing"},
		{key: "tokenizer.ggml.tokens", typ: kvStrs, arch: "llama", check: func(c *lmCtx, v any) string {
			n := int64(len(v.([]string)))
			for _, name := range []string{"token_embd.weight", "output.weight"} {
				if t, ok := c.f.Tensor(name); ok && len(t.Ne) > 1 && t.Ne[1] != n {
					return fmt.Sprintf("must have one piece per row of %s %v", name, t.Ne)
				}
			}
			return ""
		}, src: "load_tensors shapes of token_embd and output, llama-model.cpp:2640-2644 (clean)"},
		{key: "tokenizer.ggml.scores", typ: kvF32s, check: sameLengthAsTokens,
			src: "llama-vocab.cpp:2073 reads scores[i] for every token: a short array is read past its end"},
		{key: "tokenizer.ggml.token_type", typ: kvInts, check: checkTokenTypes,
			src: "llama-vocab.cpp:2077 reads toktypes[i] for every token: a short array is read past its end; a byte piece in a \"bert\" vocabulary aborts the load (GGML_ABORT in token_to_byte, llama-vocab.cpp:2590)"},
		{key: "tokenizer.ggml.merges", typ: kvStrs, src: "llama-vocab.cpp:1747 gguf_get_arr_str aborts on a non-string array (gguf.cpp:818)"},
		{key: "tokenizer.ggml.token_type_count", typ: kvU32, src: "llama-vocab.cpp:1690 (clean)"},
		{key: "tokenizer.ggml.add_bos_token", typ: kvBool, check: needsSpecial("bos"),
			src: "llama-vocab.cpp:2823/2920 GGML_ASSERT(special_bos_id != LLAMA_TOKEN_NULL) when tokenizing"},
		{key: "tokenizer.ggml.add_eos_token", typ: kvBool, check: needsSpecial("eos"),
			src: "llama-vocab.cpp:2860/2945 GGML_ASSERT(special_eos_id != LLAMA_TOKEN_NULL) when tokenizing"},
		{key: "tokenizer.ggml.add_sep_token", typ: kvBool, src: "llama-vocab.cpp:2169 (clean)"},
	}
	for _, name := range specialTokenKeys {
		rules = append(rules, lmRule{key: "tokenizer.ggml." + name + "_token_id", typ: kvU32,
			src: "llama-vocab.cpp:2151 (clean; an id outside the vocabulary is ignored with a warning)"})
	}
	return rules
}

// lmCtx is the file being checked and the values the rules read so far.
type lmCtx struct {
	path, arch string
	f          *gguf.File
	vals       map[string]any // decoded value by full key
}

// k spells key for this file's architecture.
func (c *lmCtx) k(key string) string { return strings.ReplaceAll(key, "{arch}", c.arch) }

func (c *lmCtx) has(key string) bool { _, ok := c.f.Get(c.k(key)); return ok }

func (c *lmCtx) u32(key string) uint32 { return c.u32Or(key, 0) }

func (c *lmCtx) u32Or(key string, def uint32) uint32 {
	if v, ok := c.vals[c.k(key)].(uint32); ok {
		return v
	}
	return def
}

func (c *lmCtx) layers(key string) []uint32 { v, _ := c.vals[c.k(key)].([]uint32); return v }

// headK is the key head size llama.cpp derives (llama-model.cpp:595-596):
// attention.key_length, else embedding_length / head_count of layer 0.
func (c *lmCtx) headK() (uint32, bool) {
	if v, ok := c.vals[c.k("{arch}.attention.key_length")].(uint32); ok {
		return v, true
	}
	h := c.layers("{arch}.attention.head_count")
	if len(h) == 0 || h[0] == 0 {
		return 0, false
	}
	return c.u32("{arch}.embedding_length") / h[0], true
}

func headK(c *lmCtx) any {
	if hk, ok := c.headK(); ok {
		return hk
	}
	return nil
}

// embdPerHead is llama.cpp's default for key_length and value_length
// (llama-model.cpp:595, 598).
func embdPerHead(c *lmCtx) any {
	h := c.layers("{arch}.attention.head_count")
	if len(h) == 0 || h[0] == 0 {
		return nil
	}
	return c.u32("{arch}.embedding_length") / h[0]
}

func zero(*lmCtx) any { return uint32(0) }

func (c *lmCtx) fail(key, shown, why string) error {
	return fmt.Errorf("model: %s: %s = %s: %s: %w", c.path, key, shown, why, ErrFormat)
}

// checkLMHparams applies lmRules to a language model's GGUF header, then
// refuses any other non-finite float hyper-parameter of its architecture.
func checkLMHparams(path string, f *gguf.File) error {
	c := &lmCtx{path: path, f: f, vals: map[string]any{}}
	if kv, ok := f.Get("general.architecture"); ok {
		c.arch, _ = kv.Value.(string)
	}
	for _, r := range lmRules {
		if r.arch != "" && r.arch != c.arch {
			continue
		}
		key := c.k(r.key)
		kv, ok := f.Get(key)
		if !ok {
			if r.need {
				return fmt.Errorf("model: %s: %s is missing (llama.cpp requires it): %w", path, key, ErrFormat)
			}
			if r.dflt == nil || r.check == nil {
				continue
			}
			v := r.dflt(c)
			if v == nil {
				continue
			}
			if why := r.check(c, v); why != "" {
				return c.fail(key, show(v)+" (not set; llama.cpp's default)", why)
			}
			continue
		}
		v, why := decodeKV(c, kv, r.typ)
		if why != "" {
			return c.fail(key, showKV(kv), why)
		}
		c.vals[key] = v
		if r.check != nil {
			if why := r.check(c, v); why != "" {
				return c.fail(key, show(kv.Value), why)
			}
		}
	}
	// Any other float of the architecture (yarn factors, and the scales and
	// clamps other architectures read) goes straight into the graph; NaN or
	// Inf is never a meaningful value for one.
	for _, kv := range f.KV {
		if c.arch == "" || !strings.HasPrefix(kv.Key, c.arch+".") {
			continue
		}
		for _, x := range floats(kv.Value) {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return c.fail(kv.Key, show(kv.Value), "must be finite")
			}
		}
	}
	return nil
}

// decodeKV converts kv to the Go value of typ, or says which type it must
// have; it also checks per-layer arrays against block_count.
func decodeKV(c *lmCtx, kv gguf.KV, typ kvType) (any, string) {
	switch typ {
	case kvU32:
		if v, ok := kv.Value.(uint32); ok {
			return v, ""
		}
		return nil, "must be a uint32"
	case kvF32:
		if v, ok := kv.Value.(float32); ok {
			return v, ""
		}
		return nil, "must be a float32"
	case kvBool:
		if v, ok := kv.Value.(bool); ok {
			return v, ""
		}
		return nil, "must be a bool"
	case kvStr:
		if v, ok := kv.Value.(string); ok {
			return v, ""
		}
		return nil, "must be a string"
	case kvStrs:
		if v, ok := kv.Value.([]string); ok {
			return v, ""
		}
		return nil, "must be an array of strings"
	case kvF32s:
		if v, ok := kv.Value.([]float32); ok {
			return v, ""
		}
		return nil, "must be an array of float32"
	case kvInts:
		switch v := kv.Value.(type) {
		case []int32:
			return v, ""
		case []uint32:
			return v, ""
		}
		return nil, "must be an array of int32"
	case kvLayers:
		n := int(c.u32("{arch}.block_count"))
		want := fmt.Sprintf("must be a uint32 or an array of %d (%s) non-negative int32 or uint32", n, c.k("{arch}.block_count"))
		var out []uint32
		switch v := kv.Value.(type) {
		case uint32:
			out = make([]uint32, n)
			for i := range out {
				out[i] = v
			}
			return out, ""
		case []uint32:
			out = v
		case []int32:
			for _, x := range v {
				if x < 0 {
					return nil, want
				}
				out = append(out, uint32(x))
			}
		default:
			return nil, want
		}
		if len(out) != n {
			return nil, want
		}
		return out, ""
	}
	return nil, "has an unexpected type"
}

func atLeast(lo uint32) func(*lmCtx, any) string {
	return func(_ *lmCtx, v any) string {
		if v.(uint32) < lo {
			return fmt.Sprintf("must be >= %d", lo)
		}
		return ""
	}
}

func atMost(hi uint32) func(*lmCtx, any) string {
	return func(_ *lmCtx, v any) string {
		if v.(uint32) > hi {
			return fmt.Sprintf("must be <= %d", hi)
		}
		return ""
	}
}

func between(lo, hi uint32) func(*lmCtx, any) string {
	return func(_ *lmCtx, v any) string {
		if x := v.(uint32); x < lo || x > hi {
			return fmt.Sprintf("must be between %d and %d", lo, hi)
		}
		return ""
	}
}

func finiteNonNegative(_ *lmCtx, v any) string {
	if x := float64(v.(float32)); math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return "must be a finite number >= 0"
	}
	return ""
}

func finitePositive(_ *lmCtx, v any) string {
	if x := float64(v.(float32)); math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		return "must be a finite number > 0"
	}
	return ""
}

// uniformPositive is the llama architecture's rule for per-layer counts:
// at least 1, and the same in every layer (its tensors and graph use
// layer 0's value throughout).
func uniformPositive(v []uint32) string {
	for il, x := range v {
		if x != v[0] {
			return fmt.Sprintf("must be the same in every layer (llama.cpp's llama architecture uses layer 0's %d for all)", v[0])
		}
		if x == 0 {
			return "must be >= 1" + layerNote(il, v)
		}
	}
	return ""
}

// layerNote names the layer when a per-layer value differs between layers.
func layerNote(il int, vs ...[]uint32) string {
	for _, v := range vs {
		for _, x := range v {
			if x != v[0] {
				return fmt.Sprintf(" (layer %d)", il)
			}
		}
	}
	return ""
}

func checkTokens(c *lmCtx, v any) string {
	toks := v.([]string)
	if len(toks) == 0 {
		return "must not be empty"
	}
	// llama.cpp renames an empty piece to "[EMPTY_<id>]" before indexing
	// (llama-vocab.cpp:2065), so a repeat can also come from that.
	seen := make(map[string]int, len(toks))
	for i, t := range toks {
		if t == "" {
			t = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		if j, dup := seen[t]; dup {
			return fmt.Sprintf("vocabulary piece %q appears twice (tokens %d and %d)", t, j, i)
		}
		seen[t] = i
	}
	switch m, _ := c.vals["tokenizer.ggml.model"].(string); m {
	case "llama":
		for b := 0; b < 256; b++ {
			if p := fmt.Sprintf("<0x%02X>", b); !has(seen, p) {
				return fmt.Sprintf("has no byte piece %q (a SentencePiece vocabulary spells text it has no piece for with the 256 byte pieces)", p)
			}
		}
	case "rwkv":
		// llama.cpp's RWKV tokenizer (llama-vocab.cpp:1195) restarts at
		// the same position for ever when a text starts like a piece
		// but no whole piece matches: every first byte of a piece must be
		// a piece itself.
		var single, first [256]bool
		for i, t := range toks {
			if t == "" {
				t = "[EMPTY_" + strconv.Itoa(i) + "]"
			}
			b := rwkvUnescape(t)
			if len(b) == 1 {
				single[b[0]] = true
			}
			if len(b) > 0 {
				first[b[0]] = true
			}
		}
		for b := range 256 {
			if first[b] && !single[b] {
				return fmt.Sprintf("has pieces starting with byte 0x%02X but no piece for that byte alone (llama.cpp's RWKV tokenizer loops for ever on such text)", b)
			}
		}
	}
	return ""
}

// rwkvUnescape is llama_unescape_rwkv_token (llama-vocab.cpp:1122): RWKV
// pieces are stored with \t, \n, \r, \xNN and \\ escapes.
func rwkvUnescape(s string) []byte {
	var out []byte
	escaping, hexLeft, acc := false, 0, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case hexLeft > 0:
			v := ch - '0'
			if ch >= 'a' {
				v = ch - 'a' + 10
			}
			acc = acc<<4 + v
			if hexLeft--; hexLeft == 0 {
				out = append(out, acc)
				acc = 0
			}
		case escaping:
			switch ch {
			case 't':
				out = append(out, '\t')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 'x':
				hexLeft = 2
			default:
				out = append(out, ch)
			}
			escaping = false
		case ch == '\\':
			escaping = true
		default:
			out = append(out, ch)
		}
	}
	return out
}

func sameLengthAsTokens(c *lmCtx, v any) string {
	toks, _ := c.vals["tokenizer.ggml.tokens"].([]string)
	n := len(ints(v))
	if f, ok := v.([]float32); ok {
		n = len(f)
	}
	if n != len(toks) {
		return fmt.Sprintf("must have one value per token (%d)", len(toks))
	}
	return ""
}

func isBytePiece(t string) bool {
	if len(t) != 6 || t[:3] != "<0x" || t[5] != '>' {
		return false
	}
	for _, c := range t[3:5] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// tokenByte is LLAMA_TOKEN_TYPE_BYTE (include/llama.h).
const tokenByte = 6

func checkTokenTypes(c *lmCtx, v any) string {
	if why := sameLengthAsTokens(c, v); why != "" {
		return why
	}
	m, _ := c.vals["tokenizer.ggml.model"].(string)
	if m == "llama" || m == "t5" {
		// SentencePiece and Unigram vocabularies read a byte piece's value
		// from its text "<0xHH>" (token_to_byte, llama-vocab.cpp:2583): a
		// shorter text throws std::out_of_range while loading.
		toks, _ := c.vals["tokenizer.ggml.tokens"].([]string)
		for i, t := range ints(v) {
			if t == tokenByte && i < len(toks) && !isBytePiece(toks[i]) {
				return fmt.Sprintf("marks token %d (%q) as a byte piece (type %d), but byte pieces are spelled <0xHH>", i, toks[i], tokenByte)
			}
		}
	}
	if m == "bert" {
		// llama.cpp renders every byte piece once while loading, and its
		// WordPiece tokenizer has no byte pieces to render.
		for i, t := range ints(v) {
			if t == tokenByte {
				return fmt.Sprintf("must have no byte pieces (type %d) with the \"bert\" tokenizer (token %d is one)", tokenByte, i)
			}
		}
	}
	return ""
}

func ints(v any) []int64 {
	var out []int64
	switch x := v.(type) {
	case []int32:
		for _, t := range x {
			out = append(out, int64(t))
		}
	case []uint32:
		for _, t := range x {
			out = append(out, int64(t))
		}
	}
	return out
}

// needsSpecial refuses add_<which>_token = true when the tokenizer then has
// no such token: neither the file's id (inside the vocabulary) nor a
// default of its tokenizer model.
func needsSpecial(which string) func(*lmCtx, any) string {
	return func(c *lmCtx, v any) string {
		if !v.(bool) {
			return ""
		}
		model, _ := c.vals["tokenizer.ggml.model"].(string)
		toks, _ := c.vals["tokenizer.ggml.tokens"].([]string)
		d := tokenizerDefaults[model]
		id := map[string]int64{"bos": d.bos, "eos": d.eos}[which]
		key := "tokenizer.ggml." + which + "_token_id"
		if kv, ok := c.f.Get(key); ok {
			if x, ok := kv.Value.(uint32); ok && int64(x) < int64(len(toks)) {
				id = int64(x)
			}
		}
		if id < 0 || id >= int64(len(toks)) {
			return fmt.Sprintf("needs %s inside the vocabulary (the %q tokenizer has no default)", key, model)
		}
		return ""
	}
}

// floats returns the float values of a scalar or array, nil for others.
func floats(v any) []float64 {
	switch x := v.(type) {
	case float32:
		return []float64{float64(x)}
	case float64:
		return []float64{x}
	case []float32:
		out := make([]float64, len(x))
		for i, f := range x {
			out[i] = float64(f)
		}
		return out
	case []float64:
		return x
	}
	return nil
}

// show formats a value for a message: floats as Go parses them (NaN,
// +Inf), strings quoted, long arrays by their length.
func show(v any) string {
	switch x := v.(type) {
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return strconv.Quote(x)
	case []string:
		return fmt.Sprintf("[%d strings]", len(x))
	case []int32:
		if len(x) > 8 {
			return fmt.Sprintf("[%d int32s]", len(x))
		}
	case []uint32:
		if len(x) > 8 {
			return fmt.Sprintf("[%d uint32s]", len(x))
		}
	}
	if fs := floats(v); fs != nil {
		if len(fs) > 8 {
			return fmt.Sprintf("[%d floats]", len(fs))
		}
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = strconv.FormatFloat(f, 'g', -1, 32)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	s := fmt.Sprint(v)
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// showKV is show plus the GGUF type, for messages about the type.
func showKV(kv gguf.KV) string {
	t := kv.Type.String()
	if kv.Type == gguf.ValArray {
		t = "array of " + kv.ElemType.String()
	}
	return show(kv.Value) + " (" + t + ")"
}

func has(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func known(tokenizer string) bool { _, ok := tokenizerDefaults[tokenizer]; return ok }
