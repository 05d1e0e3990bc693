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
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	bias, lnW, mat := c.tensorMakers()
	ts := []tensorDef{
		{name: "v.patch_embd.weight", typ: F16, ne: []int64{ps, ps, 3, e}, std: 1 / math.Sqrt(float64(3*ps*ps))},
		bias("v.patch_embd.bias", e),
		{name: "v.position_embd.weight", typ: c.Type, ne: []int64{e, int64(c.NPatches())}, std: 0.2},
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
	return append(ts,
		lnW("v.post_ln.weight"), bias("v.post_ln.bias", e),
		lnW("mm.soft_emb_norm.weight"),
		// ne = [LM width, n_embd]: clip.cpp multiplies by its transpose
		// and reads the LM width from ne[0]
		tensorDef{name: "mm.input_projection.weight", typ: c.Type, ne: []int64{p, e}, std: 1 / math.Sqrt(float64(e))},
	)
}

func (c ClipSpec) gemma3ParamCount() int64 {
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	n := ps*ps*3*e + e + e*int64(c.NPatches()) // patch embedding, its bias, positions
	n += int64(c.NLayer) * (4*(e*e+e) + 4*e + (e*f + f) + (f*e + e))
	return n + 2*e + e + p*e // post-LN, soft_emb_norm, input_projection
}
