package testmodel

import (
	"fmt"
	"math"
)

// Gemma 3's mmproj, as the pinned llama.cpp reads it (tools/mtmd/clip.cpp,
// PROJECTOR_TYPE_GEMMA3, and models/siglip.cpp): a SigLIP ViT (patch
// embedding with bias, learned positions for the patches only, no class
// token and no pre-LN, blocks with biased q/k/v/out and LayerNorms, a
// post-LN), then the patch grid average-pooled MergeFactor x MergeFactor,
// RMS-normed with mm.soft_emb_norm and projected to the LM's width by
// mm.input_projection. mtmd wraps the image in <start_of_image> ...
// <end_of_image> and evaluates it with non-causal attention.

// SigLIP's image normalisation (Gemma 3's preprocessor_config.json).
var (
	SigLIPMean = [3]float32{0.5, 0.5, 0.5}
	SigLIPStd  = [3]float32{0.5, 0.5, 0.5}
)

// TinyGemma3 is a 2-block, 64-wide SigLIP at 128 px with 16 px patches (an
// 8x8 grid) pooled 2x2 to 16 image tokens, projecting to 64 (TinyLM's
// width), F32.
func TinyGemma3() ClipSpec {
	return ClipSpec{ImageSize: 128, PatchSize: 16, NEmbd: 64, NHead: 4, NFF: 128, NLayer: 2, ProjDim: 64,
		Type: F32, Seed: DefaultSeed + 3, Mean: SigLIPMean, Std: SigLIPStd, LayerNormEps: 1e-6,
		UseGELU: true, Projector: ProjectorGemma3, MergeFactor: 2}
}

// mergeFactor is the pooling kernel clip.cpp uses: 4 unless the file says.
func (c ClipSpec) mergeFactor() int {
	if c.MergeFactor > 0 {
		return c.MergeFactor
	}
	return 4
}

func (c ClipSpec) gemma3Tensors() []tensorDef {
	e, p := int64(c.NEmbd), int64(c.ProjDim)
	_, lnW, _ := c.tensorMakers()
	return append(c.siglipTensors(),
		lnW("mm.soft_emb_norm.weight"),
		// ne = [LM width, n_embd]: clip.cpp multiplies by its transpose
		// and reads the LM width from ne[0]; F16 as the converter forces it
		tensorDef{name: "mm.input_projection.weight", typ: F16, ne: []int64{p, e}, std: 1 / math.Sqrt(float64(e))},
	)
}

// siglipTensors is the SigLIP tower clip_graph_siglip runs for every
// projector built on it (gemma3, janus_pro): the patch embedding through
// the post-LN, in the converter's order.
func (c ClipSpec) siglipTensors() []tensorDef {
	e, f := int64(c.NEmbd), int64(c.NFF)
	ps := int64(c.PatchSize)
	bias, lnW, mat := c.tensorMakers()
	// Types as llama.cpp's converter forces them for Gemma 3
	// (Gemma3VisionModel.tensor_force_quant): the embeddings (patch and
	// position) F32 whatever the file type. clip adds the position table to
	// the F32 patches as it is, and ggml's CPU add has no F32 + F16 kernel:
	// an F16 table would abort.
	ts := []tensorDef{
		{name: "v.patch_embd.weight", typ: F32, ne: []int64{ps, ps, 3, e}, std: 1 / math.Sqrt(float64(3*ps*ps))},
		bias("v.patch_embd.bias", e),
		{name: "v.position_embd.weight", typ: F32, ne: []int64{e, int64(c.NPatches())}, std: 0.2},
	}
	for i := 0; i < c.NLayer; i++ {
		pre := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			mat(pre+"attn_q.weight", e, e), bias(pre+"attn_q.bias", e),
			mat(pre+"attn_k.weight", e, e), bias(pre+"attn_k.bias", e),
			mat(pre+"attn_v.weight", e, e), bias(pre+"attn_v.bias", e),
			mat(pre+"attn_out.weight", e, e), bias(pre+"attn_out.bias", e),
			lnW(pre+"ln1.weight"), bias(pre+"ln1.bias", e),
			// current converter naming: fc1 (n_embd -> n_ff) is ffn_up
			mat(pre+"ffn_up.weight", e, f), bias(pre+"ffn_up.bias", f),
			mat(pre+"ffn_down.weight", f, e), bias(pre+"ffn_down.bias", e),
			lnW(pre+"ln2.weight"), bias(pre+"ln2.bias", e),
		)
	}
	return append(ts, lnW("v.post_ln.weight"), bias("v.post_ln.bias", e))
}

func (c ClipSpec) gemma3ParamCount() int64 {
	e, p := int64(c.NEmbd), int64(c.ProjDim)
	return c.siglipParamCount() + e + p*e // soft_emb_norm, input_projection
}

func (c ClipSpec) siglipParamCount() int64 {
	e, f := int64(c.NEmbd), int64(c.NFF)
	ps := int64(c.PatchSize)
	n := ps*ps*3*e + e + e*int64(c.NPatches()) // patch embedding, its bias, positions
	n += int64(c.NLayer) * (4*(e*e+e) + 4*e + (e*f + f) + (f*e + e))
	return n + 2*e // post-LN
}

// Gemma 3's language model as the pinned llama.cpp reads it (architecture
// "gemma3": src/llama-model.cpp, src/models/gemma3.cpp): token embeddings
// (scaled by sqrt(n_embd) for text, not for image embeddings), blocks of
// RMSNorm, q/k/v (heads HeadDim wide, grouped KV), per-head RMSNorms of q and
// k, RoPE, attention, output projection, post-attention RMSNorm, RMSNorm, a
// GELU-gated MLP and a post-FFN RMSNorm; the output tied to the embeddings.
// With attention.sliding_window, five of every six layers attend within the
// window with rope base 10,000, the sixth globally with rope.freq_base and
// the linear rope.scaling.factor. mtmd evaluates an image's tokens between
// <start_of_image> and <end_of_image> with causal attention off.

// Gemma3Specials are the Gemma 3 control tokens a chat with images uses.
var Gemma3Specials = []string{"<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"}

// Gemma3ChatTemplate is a chat template in the style of Gemma 3's (user and
// model turns; llama.cpp's built-in engine recognises it as gemma by its
// <start_of_turn>).
const Gemma3ChatTemplate = `{{ bos_token }}{% for message in messages %}` +
	`{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}` +
	`<start_of_turn>{{ role }}
{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}` +
	`{% if item['type'] == 'image' %}<start_of_image>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}` +
	`{% endfor %}{% endif %}<end_of_turn>
{% endfor %}{% if add_generation_prompt %}<start_of_turn>model
{% endif %}`

// Gemma 3's rope base and linear scaling factor of the global layers (the
// local ones use llama.cpp's hard-coded base 10,000, unscaled).
const (
	Gemma3RopeFreq  = 1000000
	Gemma3RopeScale = 8
)

// Gemma3SWAPattern: with a sliding window, every Gemma3SWAPattern-th layer
// (1-based) is global, the others local (llama.cpp's set_swa_pattern(6)).
const Gemma3SWAPattern = 6

// TinyGemma3LM is a 6-layer, 64-wide gemma3 LM (4 heads of 32, 2 KV heads:
// HeadDim differs from NEmbd/NHead as in every Gemma 3), FFN 128, five
// local layers with a 16-token sliding window (so an image crosses it) and
// a global one, tied output, with the Gemma specials (EOS <end_of_turn>)
// and chat template.
func TinyGemma3LM() LMSpec {
	return LMSpec{NEmbd: 64, NLayer: 6, NHead: 4, NHeadKV: 2, NFF: 128, NCtx: DefaultNCtx, Type: F32, Seed: DefaultSeed + 6,
		Arch: ArchGemma3, HeadDim: 32, SlidingWindow: 16, RopeFreqBase: Gemma3RopeFreq, RopeScale: Gemma3RopeScale,
		TiedOutput: true, Specials: Gemma3Specials, EOSPiece: "<end_of_turn>", ChatTemplate: Gemma3ChatTemplate}
}

// Gemma3LM4B is Gemma-3-4B's language model in Q4_0: 2560 wide, 34
// layers, 8 heads of 256 with 4 KV heads, FFN 10240, vocabulary 262,208,
// sliding window 1024, rope base 1e6 with linear scaling 8, tied output.
func Gemma3LM4B() LMSpec {
	return LMSpec{NEmbd: 2560, NLayer: 34, NHead: 8, NHeadKV: 4, NFF: 10240, NCtx: DefaultNCtx, VocabWords: 262208,
		Type: Q4_0, Seed: DefaultSeed + 6, Arch: ArchGemma3, HeadDim: 256, SlidingWindow: 1024,
		RopeFreqBase: Gemma3RopeFreq, RopeScale: Gemma3RopeScale, TiedOutput: true, Specials: Gemma3Specials,
		EOSPiece: "<end_of_turn>", ChatTemplate: Gemma3ChatTemplate}
}

// SmallGemma3 has Gemma 3's geometry (896 px, 14 px patches: 64x64 patches
// average-pooled 4x4 to 16x16 = 256 tokens; no scale-factor key, clip.cpp's
// default 4) at a tiny width: 2 blocks, 64 wide, FFN 128, F32, projecting
// to 64 (TinyGemma3LM's width). One head of 64: ggml's CPU flash attention
// over 4,096 tokens costs per head and query far more than its FLOPs, and
// mtmd runs it (4 heads of 16 took half a minute an image here).
// TinyGemma3 and MidGemma3 have several heads.
func SmallGemma3() ClipSpec {
	return ClipSpec{ImageSize: 896, PatchSize: 14, NEmbd: 64, NHead: 1, NFF: 128, NLayer: 2, ProjDim: 64,
		Type: F32, Seed: DefaultSeed + 7, Mean: SigLIPMean, Std: SigLIPStd, LayerNormEps: 1e-6,
		UseGELU: true, Projector: ProjectorGemma3}
}

// MidGemma3 has SigLIP-So400m's widths (1152, 16 heads of 72, FFN 4304)
// with 2 blocks, F16, at 224 px (16x16 patches pooled 4x4 to 4x4 tokens),
// projecting to projDim.
func MidGemma3(projDim int) ClipSpec {
	c := Gemma3Vision4B()
	c.ImageSize, c.NLayer, c.ProjDim = 224, 2, projDim
	return c
}

// Gemma3Vision4B is Gemma-3-4B's vision tower: SigLIP-So400m at 896 px
// (1152 wide, 27 blocks, 16 heads, FFN 4304, GELU, LayerNorm eps 1e-6),
// F16, projecting to 2560.
func Gemma3Vision4B() ClipSpec {
	return ClipSpec{ImageSize: 896, PatchSize: 14, NEmbd: 1152, NHead: 16, NFF: 4304, NLayer: 27, ProjDim: 2560,
		Type: F16, Seed: DefaultSeed + 7, Mean: SigLIPMean, Std: SigLIPStd, LayerNormEps: 1e-6,
		UseGELU: true, Projector: ProjectorGemma3}
}

func (s LMSpec) validateGemma3() error {
	const k = "LMSpec"
	if s.arch() != ArchGemma3 {
		if s.HeadDim != 0 || s.SlidingWindow != 0 || s.RopeScale != 0 {
			return fieldErr(k, "HeadDim", s.HeadDim, "HeadDim, SlidingWindow and RopeScale are for Arch "+ArchGemma3+" only")
		}
		return nil
	}
	switch {
	case s.HeadDim < 2 || s.HeadDim%2 != 0:
		return fieldErr(k, "HeadDim", s.HeadDim, "must be even and >= 2 for "+ArchGemma3)
	case s.Type == Q4_0 && (s.HeadDim*s.NHead)%32 != 0:
		return fieldErr(k, "HeadDim", s.HeadDim, "HeadDim*NHead must be a multiple of 32 for Q4_0")
	case s.SlidingWindow < 0:
		return fieldErr(k, "SlidingWindow", s.SlidingWindow, "must be >= 0")
	case s.SlidingWindow > 0 && s.NLayer < Gemma3SWAPattern:
		// every layer would be local and llama.cpp's global KV cache empty
		// (it aborts on the first decode)
		return fieldErr(k, "NLayer", s.NLayer, fmt.Sprintf("must be >= %d with a sliding window (layer %d is the first global one)",
			Gemma3SWAPattern, Gemma3SWAPattern))
	case !(s.RopeScale >= 0) || math.IsInf(float64(s.RopeScale), 0):
		return fieldErr(k, "RopeScale", s.RopeScale, "must be 0 (no key) or a finite value > 0")
	case !s.TiedOutput:
		return fieldErr(k, "TiedOutput", s.TiedOutput, "must be true: Gemma 3 ties its output to the embeddings")
	}
	return nil
}

func (s LMSpec) gemma3Tensors() []tensorDef {
	e, f, v := int64(s.NEmbd), int64(s.NFF), int64(s.NVocab())
	hd := int64(s.HeadDim)
	q, kv := hd*int64(s.NHead), hd*int64(s.NHeadKV)
	se, sf, sq := 1/math.Sqrt(float64(e)), 1/math.Sqrt(float64(f)), 1/math.Sqrt(float64(q))
	norm := func(name string, n int64) tensorDef {
		return tensorDef{name: name, typ: F32, ne: []int64{n}, mean: 1, std: 0.02}
	}
	mat := func(name string, ne0, ne1 int64, std float64) tensorDef {
		return tensorDef{name: name, typ: s.Type, ne: []int64{ne0, ne1}, std: std}
	}
	ts := []tensorDef{mat("token_embd.weight", e, v, se)}
	for i := 0; i < s.NLayer; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			norm(p+"attn_norm.weight", e),
			mat(p+"attn_q.weight", e, q, se),
			mat(p+"attn_k.weight", e, kv, se),
			mat(p+"attn_v.weight", e, kv, se),
			norm(p+"attn_q_norm.weight", hd),
			norm(p+"attn_k_norm.weight", hd),
			mat(p+"attn_output.weight", q, e, sq),
			norm(p+"post_attention_norm.weight", e),
			norm(p+"ffn_norm.weight", e),
			mat(p+"ffn_gate.weight", e, f, se),
			mat(p+"ffn_up.weight", e, f, se),
			mat(p+"ffn_down.weight", f, e, sf),
			norm(p+"post_ffw_norm.weight", e),
		)
	}
	return append(ts, norm("output_norm.weight", e))
}

func (s LMSpec) gemma3ParamCount() int64 {
	e, f, v := int64(s.NEmbd), int64(s.NFF), int64(s.NVocab())
	hd := int64(s.HeadDim)
	q, kv := hd*int64(s.NHead), hd*int64(s.NHeadKV)
	perLayer := 4*e + 2*hd + e*q + 2*e*kv + q*e + 3*e*f
	return v*e + e + int64(s.NLayer)*perLayer
}
