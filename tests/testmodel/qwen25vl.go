package testmodel

import (
	"fmt"
	"math"
	"slices"
)

// Qwen2.5-VL as the pinned llama.cpp reads it.
//
// The mmproj (tools/mtmd/clip.cpp, PROJECTOR_TYPE_QWEN25VL, and
// models/qwen2vl.cpp): the patch embedding is HF's Conv3d over two
// identical frames, stored as two 2-D kernels v.patch_embd.weight and
// v.patch_embd.weight.1 (no bias, no class token, no learned positions:
// 2-D rotary positions instead); blocks with RMSNorm ln1/ln2 (weights
// only), biased q/k/v/out and a gated SiLU MLP (ffn_gate, ffn_up,
// ffn_down, all biased); window attention except in every n_wa_pattern-th
// block; v.post_ln (the merger's RMSNorm ln_q); then every 2x2 group of
// patches concatenated (4*n_embd) through mm.0 -> GELU -> mm.2 to the LM
// width. clip.cpp requires clip.vision.n_wa_pattern for this projector and
// reads clip.use_silu for the MLP's activation.
//
// The LM (src/models/qwen2vl.cpp, architecture "qwen2vl"): Qwen2 blocks
// (q/k/v biases, the graph adds them unconditionally) with M-RoPE, whose
// sections come from qwen2vl.rope.dimension_sections.

// QwenMerge is the side of the patch groups the merger concatenates (the
// pinned llama.cpp hard-codes 2 for Qwen2.5-VL).
const QwenMerge = 2

// QwenWindow is Qwen2.5-VL's attention window in pixels (HF window_size).
const QwenWindow = 112

// QwenSpecials are the Qwen2-VL control tokens a chat with images uses.
var QwenSpecials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"}

// QwenChatTemplate is a ChatML template in the style of Qwen2-VL's: an
// image part becomes <|vision_start|><|image_pad|><|vision_end|>
// (llama.cpp's built-in template engine recognises it as chatml by its
// <|im_start|>).
const QwenChatTemplate = `{% set image_count = namespace(value=0) %}{% for message in messages %}` +
	`{% if loop.first and message['role'] != 'system' %}<|im_start|>system
You are a helpful assistant.<|im_end|>
{% endif %}<|im_start|>{{ message['role'] }}
{% if message['content'] is string %}{{ message['content'] }}<|im_end|>
{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}` +
	`{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>` +
	`{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>
{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}`

// QwenRopeFreq is Qwen2.5's rope.freq_base.
const QwenRopeFreq = 1000000

// TinyQwenLM is a 2-layer, 64-wide qwen2vl LM (4 heads of 16, 2 KV heads)
// with the Qwen specials (EOS <|im_end|>, no BOS) and chat template; M-RoPE
// sections 2+3+3 of the 8 rotary pairs per head.
func TinyQwenLM() LMSpec {
	return LMSpec{NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 128, NCtx: DefaultNCtx, Type: F32, Seed: DefaultSeed + 4,
		Arch: ArchQwen2VL, RopeSections: []int32{2, 3, 3, 0}, RopeFreqBase: QwenRopeFreq, Specials: QwenSpecials,
		EOSPiece: "<|im_end|>", NoBOS: true, ChatTemplate: QwenChatTemplate}
}

// TinyQwen25VL is a 4-block, 64-wide Qwen2.5-VL vision tower (4 heads of
// 16, FFN 96, 14 px patches) with full attention in blocks 2 and 4
// (n_wa_pattern 2) and windows in 1 and 3, merging to 64 (TinyQwenLM's
// width), F32.
func TinyQwen25VL() ClipSpec {
	return ClipSpec{ImageSize: 560, PatchSize: 14, NEmbd: 64, NHead: 4, NFF: 96, NLayer: 4, ProjDim: 64,
		Type: F32, Seed: DefaultSeed + 5, Mean: CLIPMean, Std: CLIPStd, LayerNormEps: 1e-6,
		UseSiLU: true, Projector: ProjectorQwen25VL, WAPattern: 2, WindowSize: QwenWindow}
}

// MidQwen25VL has Qwen2.5-VL-3B's vision widths (1280, 16 heads of 80,
// FFN 3420) but 2 blocks (a window block, then a full one), F16, merging
// to projDim.
func MidQwen25VL(projDim int) ClipSpec {
	c := Qwen25VL3BVision()
	c.NLayer, c.WAPattern, c.ProjDim = 2, 2, projDim
	return c
}

// Qwen25VL3BLM is Qwen2.5-VL-3B's language model in Q4_0: 2048 wide, 36
// layers, 16 heads with 2 KV heads, FFN 11008, vocabulary 151,936, tied
// output, rope base 1e6, M-RoPE sections 16+24+24.
func Qwen25VL3BLM() LMSpec {
	return LMSpec{NEmbd: 2048, NLayer: 36, NHead: 16, NHeadKV: 2, NFF: 11008, NCtx: DefaultNCtx, VocabWords: 151936,
		Type: Q4_0, Seed: DefaultSeed + 4, Arch: ArchQwen2VL, RopeSections: []int32{16, 24, 24, 0},
		RopeFreqBase: QwenRopeFreq, TiedOutput: true, Specials: QwenSpecials, EOSPiece: "<|im_end|>", NoBOS: true,
		ChatTemplate: QwenChatTemplate}
}

// Qwen25VL3BVision is Qwen2.5-VL-3B's vision tower: 1280 wide, 32 blocks,
// 16 heads, FFN 3420, full attention in blocks 8, 16, 24, 32
// (fullatt_block_indexes 7, 15, 23, 31: n_wa_pattern 8), F16, merging to
// 2048.
func Qwen25VL3BVision() ClipSpec {
	return ClipSpec{ImageSize: 560, PatchSize: 14, NEmbd: 1280, NHead: 16, NFF: 3420, NLayer: 32, ProjDim: 2048,
		Type: F16, Seed: DefaultSeed + 5, Mean: CLIPMean, Std: CLIPStd, LayerNormEps: 1e-6,
		UseSiLU: true, Projector: ProjectorQwen25VL, WAPattern: 8, WindowSize: QwenWindow}
}

func (s LMSpec) validateRope() error {
	const k = "LMSpec"
	if s.arch() != ArchQwen2VL {
		if len(s.RopeSections) > 0 {
			return fieldErr(k, "RopeSections", s.RopeSections, "only for Arch "+ArchQwen2VL)
		}
		return nil
	}
	half := int32(s.NEmbd / s.NHead / 2)
	if len(s.RopeSections) != 4 || slices.ContainsFunc(s.RopeSections, func(v int32) bool { return v < 0 }) {
		return fieldErr(k, "RopeSections", s.RopeSections, "must be 4 values >= 0 (time, rows, columns, unused)")
	}
	var sum int32
	for _, v := range s.RopeSections {
		sum += v
	}
	if sum != half {
		return fieldErr(k, "RopeSections", s.RopeSections, fmt.Sprintf("must add up to half the head size, %d", half))
	}
	return nil
}

func (c ClipSpec) validateQwen() error {
	const k = "ClipSpec"
	if c.projector() != ProjectorQwen25VL {
		if c.WAPattern != 0 || c.WindowSize != 0 {
			return fieldErr(k, "WAPattern", c.WAPattern, "WAPattern and WindowSize are for a "+ProjectorQwen25VL+" projector only")
		}
		return nil
	}
	switch {
	case (c.NEmbd/c.NHead)%4 != 0:
		return fieldErr(k, "NHead", c.NHead, fmt.Sprintf("head size NEmbd/NHead=%d must be a multiple of 4 (2-D rotary sections)", c.NEmbd/c.NHead))
	case c.NFF == c.NEmbd:
		// clip.cpp swaps ffn_up and ffn_down when ffn_down takes n_embd
		return fieldErr(k, "NFF", c.NFF, "must differ from NEmbd (clip.cpp would take the MLP for a legacy swapped one)")
	case c.ImageSize%(QwenMerge*c.PatchSize) != 0:
		return fieldErr(k, "ImageSize", c.ImageSize, fmt.Sprintf("must be a multiple of %d (2x2 patch groups)", QwenMerge*c.PatchSize))
	case c.WAPattern < 1:
		return fieldErr(k, "WAPattern", c.WAPattern, "must be >= 1 (clip.cpp requires clip.vision.n_wa_pattern)")
	case c.WindowSize < 0 || c.WindowSize%(QwenMerge*c.PatchSize) != 0:
		return fieldErr(k, "WindowSize", c.WindowSize, fmt.Sprintf("must be 0 (no key) or a multiple of %d", QwenMerge*c.PatchSize))
	case c.MergeFactor != 0:
		return fieldErr(k, "MergeFactor", c.MergeFactor, "must be 0: Qwen2.5-VL merges 2x2")
	case len(c.GridPinpoints) > 0 || c.MergeType != "" || c.Newline || c.FeatureLayer != 0 || c.WithPostLN:
		return fieldErr(k, "Projector", c.Projector, "takes none of the LLaVA fields (GridPinpoints, MergeType, Newline, FeatureLayer, WithPostLN)")
	}
	return nil
}

func (c ClipSpec) qwenTensors() []tensorDef {
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	m := e * QwenMerge * QwenMerge
	bias, lnW, mat := c.tensorMakers()
	// Both kernels see the same frame and are summed: each gets half the
	// variance of one kernel.
	conv := 1 / math.Sqrt(float64(2*3*ps*ps))
	ts := []tensorDef{
		{name: "v.patch_embd.weight", typ: F16, ne: []int64{ps, ps, 3, e}, std: conv},
		{name: "v.patch_embd.weight.1", typ: F16, ne: []int64{ps, ps, 3, e}, std: conv},
	}
	for i := 0; i < c.NLayer; i++ {
		pre := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			mat(pre+"attn_q.weight", e, e), bias(pre+"attn_q.bias", e),
			mat(pre+"attn_k.weight", e, e), bias(pre+"attn_k.bias", e),
			mat(pre+"attn_v.weight", e, e), bias(pre+"attn_v.bias", e),
			mat(pre+"attn_out.weight", e, e), bias(pre+"attn_out.bias", e),
			lnW(pre+"ln1.weight"), lnW(pre+"ln2.weight"),
			mat(pre+"ffn_gate.weight", e, f), bias(pre+"ffn_gate.bias", f),
			mat(pre+"ffn_up.weight", e, f), bias(pre+"ffn_up.bias", f),
			mat(pre+"ffn_down.weight", f, e), bias(pre+"ffn_down.bias", e),
		)
	}
	return append(ts,
		lnW("v.post_ln.weight"),
		mat("mm.0.weight", m, m), bias("mm.0.bias", m),
		mat("mm.2.weight", m, p), bias("mm.2.bias", p),
	)
}

func (c ClipSpec) qwenParamCount() int64 {
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	m := e * QwenMerge * QwenMerge
	n := 2 * ps * ps * 3 * e
	n += int64(c.NLayer) * (4*(e*e+e) + 2*e + 2*(e*f+f) + f*e + e)
	return n + e + m*m + m + m*p + p
}
