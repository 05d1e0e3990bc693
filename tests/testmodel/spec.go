// Package testmodel generates deterministic LLaVA-1.5-format GGUF pairs (a
// "llama" language model and a "clip" mmproj with an "mlp" projector) with
// random weights, using the keys and tensor names llama.cpp's loaders read,
// so tests and benchmarks never need to download a model. It also writes a
// Gemma 3 mmproj (gemma3.go), a Janus-Pro mmproj (janus.go: a family that
// runs only through llama.cpp's mtmd), and Qwen2.5-VL pairs (qwen25vl.go: a
// qwen2vl LM and a qwen2.5vl_merger mmproj).
package testmodel

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// Tensor data types accepted in specs.
const (
	F32  = gguf.TypeF32
	F16  = gguf.TypeF16
	Q4_0 = gguf.TypeQ4_0
)

// Fixed Llama-2 hyper-parameters written into every LM.
const (
	LMRMSEps     = 1e-5
	LMRopeFreq   = 10000
	DefaultNCtx  = 4096
	DefaultLNEps = 1e-5
	DefaultSeed  = 0x5eed
)

// OpenAI CLIP image normalisation (what LLaVA-1.5 mmproj files store).
var (
	CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// LMSpec describes a "llama"-architecture language model.
type LMSpec struct {
	NEmbd   int // llama.embedding_length
	NLayer  int // llama.block_count
	NHead   int // llama.attention.head_count
	NHeadKV int // llama.attention.head_count_kv (= NHead for MHA)
	NFF     int // llama.feed_forward_length
	NCtx    int // llama.context_length
	// VocabWords: 0 uses the built-in vocabulary (BuiltinVocabSize tokens);
	// > 0 is the exact total vocabulary size n_vocab (e.g. 32000), padded with
	// synthetic pieces; it must be >= BuiltinVocabSize().
	VocabWords int
	// Type of the 2-D weights, token_embd and output included: F32, F16 or
	// Q4_0 (norm weights are always F32).
	Type         gguf.Type
	Seed         uint64
	ChatTemplate string // written as tokenizer.chat_template only if non-empty
	// Arch is general.architecture: "" or ArchLlama is a Llama-2 model;
	// ArchQwen2VL the language model of Qwen2-VL / Qwen2.5-VL (qwen25vl.go:
	// q/k/v biases, M-RoPE); ArchGemma3 Gemma 3's (gemma3.go: q/k norms,
	// post-attention and post-FFN norms, GELU, tied output, local and global
	// layers). The fields below stay out of Llama specs' records, so their
	// hashes and cached files are unchanged.
	Arch string `json:",omitempty"`
	// RopeSections is qwen2vl.rope.dimension_sections: the rotary pairs of
	// each head given to the time, row and column positions (and a fourth,
	// unused section); they must add up to half the head size. Qwen2vl only.
	RopeSections []int32 `json:",omitempty"`
	// RopeFreqBase is rope.freq_base; 0 writes LMRopeFreq.
	RopeFreqBase float32 `json:",omitempty"`
	// TiedOutput leaves output.weight out: llama.cpp then reads the output
	// projection from token_embd (Qwen2.5-VL-3B ties them).
	TiedOutput bool `json:",omitempty"`
	// Specials are CONTROL tokens appended after the built-in vocabulary
	// (before any VocabWords padding), e.g. Qwen's <|vision_start|>.
	Specials []string `json:",omitempty"`
	// EOSPiece names the end-of-sequence token ("" is </s>); NoBOS writes
	// add_bos_token false (Qwen's tokenizer adds no BOS).
	EOSPiece string `json:",omitempty"`
	NoBOS    bool   `json:",omitempty"`
	// Gemma 3 (ArchGemma3, gemma3.go), unset for the others: HeadDim is
	// attention.key_length and value_length (Gemma's heads are not
	// NEmbd/NHead wide: 256 for Gemma-3-4B's 2560 / 8); SlidingWindow is
	// attention.sliding_window (five of every six layers attend locally;
	// 0 writes no key: every layer global); RopeScale is
	// rope.scaling.factor of the global layers (linear; 0 writes no key).
	HeadDim       int     `json:",omitempty"`
	SlidingWindow int     `json:",omitempty"`
	RopeScale     float32 `json:",omitempty"`
}

// Architectures the LM writer knows.
const (
	ArchLlama   = "llama"
	ArchQwen2VL = "qwen2vl"
	ArchGemma3  = "gemma3"
)

func (s LMSpec) arch() string {
	if s.Arch == "" {
		return ArchLlama
	}
	return s.Arch
}

// ClipSpec describes a CLIP ViT vision encoder with a LLaVA-1.5 MLP projector.
type ClipSpec struct {
	ImageSize int // clip.vision.image_size
	PatchSize int // clip.vision.patch_size
	NEmbd     int // clip.vision.embedding_length
	NHead     int // clip.vision.attention.head_count
	NFF       int // clip.vision.feed_forward_length
	// NLayer is clip.vision.block_count, the number of stored blocks. LLaVA
	// mmproj files store the blocks up to the layer LLaVA selects (CLIP's
	// hidden_states[-2]): 23 of CLIP-L's 24, the converter drops the last.
	// hiprune-go's default layout runs all NLayer (or FeatureLayer) blocks;
	// the pinned llama.cpp's llava graph runs NLayer-1 of them when there is
	// no FeatureLayer (models/llava.cpp, llama.cpp issue 25817), which is why
	// NLayer must be >= 2.
	NLayer int
	// FeatureLayer, when > 0, writes clip.vision.feature_layer = [FeatureLayer]
	// (int32), as llama.cpp's current legacy converter
	// (convert_image_encoder_to_gguf.py) does when the LLaVA config names
	// vision_feature_layer / mm_vision_select_layer: a non-negative HF
	// hidden_states index (-2 of a 24-block CLIP-L is 23), the output of block
	// FeatureLayer. That converter then stores exactly FeatureLayer blocks,
	// so a converter-made file has NLayer == FeatureLayer; a smaller value
	// makes a file no converter writes (for tests). 0 (the default) writes no
	// key, like the converter without a select layer and every 2023-era file.
	FeatureLayer int `json:",omitempty"`
	// LLaVA-NeXT (1.6), all unset for LLaVA-1.5 (see WithNeXT):
	// GridPinpoints writes clip.vision.image_grid_pinpoints (width, height
	// pairs, int32, as llama.cpp's legacy converter writes the config's
	// image_grid_pinpoints); MergeType clip.vision.mm_patch_merge_type; and
	// Newline the model.image_newline tensor (ProjDim f32).
	GridPinpoints []int32 `json:",omitempty"`
	MergeType     string  `json:",omitempty"`
	Newline       bool    `json:",omitempty"`
	// ProjDim is the projector width: mm.0 maps NEmbd->ProjDim and mm.2
	// ProjDim->ProjDim, so it must equal the LM's NEmbd.
	ProjDim int
	// Type of the 2-D weights (F32 or F16). v.patch_embd.weight is always F16
	// and 1-D tensors (norms, biases, class embedding) always F32, like files
	// from the LLaVA converter.
	Type gguf.Type
	// MatQuant, when "q8_0" or "q4_0", stores the matrices the encoder
	// multiplies as weights (attention, MLP, projector; not the position
	// table) in that type, quantized by internal/gguf as a quantized mmproj
	// holds them. Their rows must be a multiple of 32 values.
	MatQuant     string `json:",omitempty"`
	Seed         uint64
	Mean, Std    [3]float32 // clip.vision.image_mean / image_std
	LayerNormEps float32    // clip.vision.attention.layer_norm_epsilon
	WithPostLN   bool       // write v.post_ln.{weight,bias} (LLaVA files have none)
	// UseGELU writes clip.use_gelu. LLaVA-1.5 files hold false (CLIP-L's
	// hidden_act is quick_gelu), so clip.cpp uses GELU_QUICK in the encoder.
	UseGELU bool
	// Projector is clip.projector_type: "" or ProjectorMLP is LLaVA-1.5's
	// CLIP ViT + MLP; ProjectorGemma3 is Gemma 3's (gemma3.go);
	// ProjectorJanusPro Janus-Pro's (janus.go), a family hiprune-go's
	// encoder does not run, so chat takes llama.cpp's mtmd path.
	Projector string `json:",omitempty"`
	// MergeFactor is Gemma 3's pooling kernel over the patch grid
	// (clip.vision.projector.scale_factor; 0 writes no key: clip.cpp's 4).
	MergeFactor int `json:",omitempty"`
	// UseSiLU writes clip.use_silu = true (Qwen2.5-VL's gated MLP is SiLU).
	UseSiLU bool `json:",omitempty"`
	// Qwen2.5-VL (qwen25vl.go), unset for the other projectors:
	// WAPattern is clip.vision.n_wa_pattern: blocks WAPattern, 2*WAPattern,
	// ... (1-based) attend over the whole image, the others within windows;
	// WindowSize is clip.vision.window_size in pixels (written when > 0;
	// the pinned llama.cpp uses 112 whatever the file says).
	WAPattern  int `json:",omitempty"`
	WindowSize int `json:",omitempty"`
}

// Projector types the generator writes.
const (
	ProjectorMLP      = "mlp"
	ProjectorGemma3   = "gemma3"
	ProjectorQwen25VL = "qwen2.5vl_merger"
	ProjectorJanusPro = "janus_pro"
)

func (c ClipSpec) projector() string {
	if c.Projector == "" {
		return ProjectorMLP
	}
	return c.Projector
}

// NImageTokens is the number of embeddings the projector gives the LM per
// image: every patch for LLaVA's MLP and Janus-Pro, the pooled grid for
// Gemma 3.
// For Qwen2.5-VL, whose token count follows the image, it is the count
// for an ImageSize x ImageSize input.
func (c ClipSpec) NImageTokens() int {
	switch c.projector() {
	case ProjectorGemma3:
		n := c.ImageSize / max(c.PatchSize, 1) / c.mergeFactor()
		return n * n
	case ProjectorQwen25VL:
		n := c.ImageSize / max(c.PatchSize, 1) / QwenMerge
		return n * n
	}
	return c.NPatches()
}

// NPatches is the number of patch tokens ((ImageSize/PatchSize)^2).
func (c ClipSpec) NPatches() int {
	n := c.ImageSize / max(c.PatchSize, 1)
	return n * n
}

func fieldErr(kind, field string, v any, why string) error {
	return fmt.Errorf("testmodel: %s.%s=%v: %s", kind, field, v, why)
}

// Validate checks the spec and returns an error naming the bad field.
func (s LMSpec) Validate() error {
	const k = "LMSpec"
	switch {
	case s.NEmbd < 1:
		return fieldErr(k, "NEmbd", s.NEmbd, "must be >= 1")
	case s.NLayer < 1:
		return fieldErr(k, "NLayer", s.NLayer, "must be >= 1")
	case s.NHead < 1:
		return fieldErr(k, "NHead", s.NHead, "must be >= 1")
	case s.NEmbd%s.NHead != 0:
		return fieldErr(k, "NEmbd", s.NEmbd, fmt.Sprintf("not divisible by NHead=%d", s.NHead))
	case s.HeadDim == 0 && (s.NEmbd/s.NHead)%2 != 0:
		return fieldErr(k, "NHead", s.NHead, fmt.Sprintf("head size NEmbd/NHead=%d must be even for RoPE", s.NEmbd/s.NHead))
	case s.NHeadKV < 1:
		return fieldErr(k, "NHeadKV", s.NHeadKV, "must be >= 1 (use NHead for multi-head attention)")
	case s.NHeadKV > s.NHead || s.NHead%s.NHeadKV != 0:
		return fieldErr(k, "NHeadKV", s.NHeadKV, fmt.Sprintf("must divide NHead=%d", s.NHead))
	case s.NFF < 1:
		return fieldErr(k, "NFF", s.NFF, "must be >= 1")
	case s.NCtx < 1:
		return fieldErr(k, "NCtx", s.NCtx, "must be >= 1")
	case s.VocabWords < 0:
		return fieldErr(k, "VocabWords", s.VocabWords, "must be >= 0")
	case s.VocabWords > 0 && s.VocabWords < BuiltinVocabSize()+len(s.Specials):
		return fieldErr(k, "VocabWords", s.VocabWords, fmt.Sprintf("must be 0 or >= the built-in vocabulary size %d", BuiltinVocabSize()+len(s.Specials)))
	case s.VocabWords > 1<<22:
		return fieldErr(k, "VocabWords", s.VocabWords, "too large")
	case s.Type != F32 && s.Type != F16 && s.Type != Q4_0:
		return fieldErr(k, "Type", s.Type, "must be F32, F16 or Q4_0")
	case s.Type == Q4_0 && s.NEmbd%gguf.QK != 0:
		return fieldErr(k, "NEmbd", s.NEmbd, "must be a multiple of 32 for Q4_0")
	case s.Type == Q4_0 && s.NFF%gguf.QK != 0:
		return fieldErr(k, "NFF", s.NFF, "must be a multiple of 32 for Q4_0")
	case s.arch() != ArchLlama && s.arch() != ArchQwen2VL && s.arch() != ArchGemma3:
		return fieldErr(k, "Arch", s.Arch, fmt.Sprintf("must be %q, %q or %q", ArchLlama, ArchQwen2VL, ArchGemma3))
	case !(s.RopeFreqBase >= 0) || math.IsInf(float64(s.RopeFreqBase), 0):
		return fieldErr(k, "RopeFreqBase", s.RopeFreqBase, "must be 0 (default) or a finite value > 0")
	}
	for i, p := range s.Specials {
		if p == "" || slices.Contains(s.Specials[:i], p) {
			return fieldErr(k, "Specials", s.Specials, fmt.Sprintf("piece %d is empty or repeated", i))
		}
	}
	if s.EOSPiece != "" && !slices.Contains(s.Specials, s.EOSPiece) {
		return fieldErr(k, "EOSPiece", s.EOSPiece, "must be one of Specials")
	}
	if err := s.validateGemma3(); err != nil {
		return err
	}
	return s.validateRope()
}

// Validate checks the spec and returns an error naming the bad field.
func (c ClipSpec) Validate() error {
	const k = "ClipSpec"
	switch {
	case c.ImageSize < 1:
		return fieldErr(k, "ImageSize", c.ImageSize, "must be >= 1")
	case c.PatchSize < 1:
		return fieldErr(k, "PatchSize", c.PatchSize, "must be >= 1")
	case c.ImageSize%c.PatchSize != 0:
		return fieldErr(k, "ImageSize", c.ImageSize, fmt.Sprintf("not divisible by PatchSize=%d", c.PatchSize))
	case c.NEmbd < 1:
		return fieldErr(k, "NEmbd", c.NEmbd, "must be >= 1")
	case c.NHead < 1:
		return fieldErr(k, "NHead", c.NHead, "must be >= 1")
	case c.NEmbd%c.NHead != 0:
		return fieldErr(k, "NEmbd", c.NEmbd, fmt.Sprintf("not divisible by NHead=%d", c.NHead))
	case c.NFF < 1:
		return fieldErr(k, "NFF", c.NFF, "must be >= 1")
	case c.NLayer < 2 && c.projector() == ProjectorMLP:
		return fieldErr(k, "NLayer", c.NLayer, "must be >= 2 (llama.cpp's llava graph runs NLayer-1 blocks)")
	case c.NLayer < 1:
		return fieldErr(k, "NLayer", c.NLayer, "must be >= 1")
	case c.FeatureLayer < 0 || c.FeatureLayer > c.NLayer:
		return fieldErr(k, "FeatureLayer", c.FeatureLayer, fmt.Sprintf("must be 0 (no key) or 1..NLayer=%d", c.NLayer))
	case len(c.GridPinpoints)%2 != 0 || slices.ContainsFunc(c.GridPinpoints, func(v int32) bool { return v < 1 }):
		return fieldErr(k, "GridPinpoints", c.GridPinpoints, "must be positive (width, height) pairs")
	case c.ProjDim < 1:
		return fieldErr(k, "ProjDim", c.ProjDim, "must be >= 1")
	case c.Type != F32 && c.Type != F16:
		return fieldErr(k, "Type", c.Type, "must be F32 or F16")
	case c.MatQuant != "" && c.MatQuant != "q8_0" && c.MatQuant != "q4_0":
		return fieldErr(k, "MatQuant", c.MatQuant, `must be "", "q8_0" or "q4_0"`)
	case !slices.Contains([]string{ProjectorMLP, ProjectorGemma3, ProjectorQwen25VL, ProjectorJanusPro}, c.projector()):
		return fieldErr(k, "Projector", c.Projector, fmt.Sprintf("must be %q, %q, %q or %q", ProjectorMLP, ProjectorGemma3, ProjectorQwen25VL, ProjectorJanusPro))
	case c.MergeFactor < 0 || (c.MergeFactor > 0 && c.projector() != ProjectorGemma3):
		return fieldErr(k, "MergeFactor", c.MergeFactor, "must be 0, or >= 1 for a gemma3 projector")
	case c.projector() == ProjectorGemma3 && (c.ImageSize/c.PatchSize)%c.mergeFactor() != 0:
		return fieldErr(k, "MergeFactor", c.MergeFactor, fmt.Sprintf("must divide the %d-patch grid side", c.ImageSize/c.PatchSize))
	case !(c.LayerNormEps > 0) || math.IsInf(float64(c.LayerNormEps), 0):
		return fieldErr(k, "LayerNormEps", c.LayerNormEps, "must be a finite value > 0")
	case c.UseGELU && c.UseSiLU:
		return fieldErr(k, "UseSiLU", c.UseSiLU, "UseGELU and UseSiLU are both set (clip.cpp refuses that)")
	}
	if err := c.validateQwen(); err != nil {
		return err
	}
	for i := range 3 {
		if !(c.Std[i] > 0) || math.IsInf(float64(c.Std[i]), 0) {
			return fieldErr(k, fmt.Sprintf("Std[%d]", i), c.Std[i], "must be a finite value > 0")
		}
		if math.IsNaN(float64(c.Mean[i])) || math.IsInf(float64(c.Mean[i]), 0) {
			return fieldErr(k, fmt.Sprintf("Mean[%d]", i), c.Mean[i], "must be finite")
		}
	}
	return nil
}

// NVocab is the vocabulary size the spec produces.
func (s LMSpec) NVocab() int {
	if s.VocabWords > 0 {
		return s.VocabWords
	}
	return BuiltinVocabSize() + len(s.Specials)
}

// ParamCount is the number of parameters (elements of all tensors).
func (s LMSpec) ParamCount() int64 {
	if s.arch() == ArchGemma3 {
		return s.gemma3ParamCount()
	}
	e, f, v := int64(s.NEmbd), int64(s.NFF), int64(s.NVocab())
	kv := e / int64(s.NHead) * int64(s.NHeadKV)
	perLayer := 2*e + 2*e*e + 2*e*kv + 3*e*f
	if s.arch() == ArchQwen2VL {
		perLayer += e + 2*kv // q, k, v biases
	}
	n := 2*v*e + e + int64(s.NLayer)*perLayer
	if s.TiedOutput {
		n -= v * e
	}
	return n
}

// ParamCount is the number of parameters (elements of all tensors).
func (c ClipSpec) ParamCount() int64 {
	switch c.projector() {
	case ProjectorGemma3:
		return c.gemma3ParamCount()
	case ProjectorQwen25VL:
		return c.qwenParamCount()
	case ProjectorJanusPro:
		return c.janusParamCount()
	}
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	n := e + ps*ps*3*e + e*int64(c.NPatches()+1) + 2*e // class, patch, position, pre_ln
	perLayer := 4*(e*e+e) + 4*e + (e*f + f) + (f*e + e)
	n += int64(c.NLayer) * perLayer
	if c.WithPostLN {
		n += 2 * e
	}
	if c.Newline {
		n += p
	}
	return n + e*p + p + p*p + p
}

// TinyLM is a 2-layer, 64-wide F32 model with the built-in vocabulary.
func TinyLM() LMSpec {
	return LMSpec{NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 4, NFF: 128, NCtx: DefaultNCtx, Type: F32, Seed: DefaultSeed}
}

// LM1B is a ~0.95B-parameter Llama (2048 wide, 16 layers, 16 heads with
// multi-head attention like Llama-2/Vicuna, FFN 5632, vocab 32000) in Q4_0.
func LM1B() LMSpec {
	return LMSpec{NEmbd: 2048, NLayer: 16, NHead: 16, NHeadKV: 16, NFF: 5632, NCtx: DefaultNCtx,
		VocabWords: 32000, Type: Q4_0, Seed: DefaultSeed}
}

// LM7B is the Llama-2-7B / Vicuna-7B (LLaVA-1.5-7B) shape in Q4_0: 4096 wide,
// 32 layers, 32 heads, FFN 11008, vocab 32000, context 4096 (6.74 B params).
// token_embd and output are Q4_0 too (llama.cpp's own Q4_0 files keep output
// in Q6_K; Q4_0 needs no K-quant encoder and differs by ~30 MB of the final
// matmul's weights, and token_embd is Q4_0 in real Q4_0 files as well).
func LM7B() LMSpec {
	return LMSpec{NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 32, NFF: 11008, NCtx: DefaultNCtx,
		VocabWords: 32000, Type: Q4_0, Seed: DefaultSeed}
}

// TinyClip: 336 px / 14 px patches (576 patches, like CLIP-L/14-336), 64 wide,
// 4 heads, FFN 128, 12 stored blocks and no feature_layer key (hiprune-go's
// default layout runs all 12; the pinned llama.cpp runs blocks 0..10), F32,
// projector to 64 (TinyLM's width).
func TinyClip() ClipSpec {
	return ClipSpec{ImageSize: 336, PatchSize: 14, NEmbd: 64, NHead: 4, NFF: 128, NLayer: 12, ProjDim: 64,
		Type: F32, Seed: DefaultSeed + 1, Mean: CLIPMean, Std: CLIPStd, LayerNormEps: DefaultLNEps}
}

// MidClip has CLIP-L's widths (1024, 16 heads, FFN 4096, 336/14) but only 3
// stored blocks, F16, projecting to projDim.
func MidClip(projDim int) ClipSpec {
	return ClipSpec{ImageSize: 336, PatchSize: 14, NEmbd: 1024, NHead: 16, NFF: 4096, NLayer: 3, ProjDim: projDim,
		Type: F16, Seed: DefaultSeed + 1, Mean: CLIPMean, Std: CLIPStd, LayerNormEps: DefaultLNEps}
}

// ClipL336 is the LLaVA-1.5 mmproj as converted files hold it: CLIP ViT-L/14-336
// (1024 wide, 16 heads, FFN 4096) with block_count 23 and no feature_layer key
// (the converter drops the 24th block since LLaVA uses hidden_states[-2], the
// output of block 23), no post_ln, quick-GELU (use_gelu false), F16, and a
// 1024->4096->4096 MLP projector.
func ClipL336() ClipSpec {
	return ClipSpec{ImageSize: 336, PatchSize: 14, NEmbd: 1024, NHead: 16, NFF: 4096, NLayer: 23, ProjDim: 4096,
		Type: F16, Seed: DefaultSeed + 1, Mean: CLIPMean, Std: CLIPStd, LayerNormEps: DefaultLNEps}
}

// Presets lists the names PresetPair accepts.
var Presets = []string{"tiny", "mid", "1b", "7b", "tiny-next", "1b-next", "tiny-qwen", "mid-qwen", "qwen3b",
	"tiny-gemma", "mid-gemma", "gemma4b"}

// PresetPair returns the LM and mmproj specs of a named pair:
// tiny = TinyLM + TinyClip; mid = TinyLM + MidClip(64);
// 1b = LM1B + ClipL336 projecting to 2048; 7b = LM7B + ClipL336; the
// -next pairs are tiny and 1b with LLaVA-NeXT's metadata (WithNeXT);
// tiny-qwen = TinyQwenLM + TinyQwen25VL; mid-qwen = TinyQwenLM +
// MidQwen25VL(64); qwen3b = Qwen25VL3BLM + Qwen25VL3BVision (qwen25vl.go);
// tiny-gemma = TinyGemma3LM + SmallGemma3; mid-gemma = TinyGemma3LM +
// MidGemma3(64); gemma4b = Gemma3LM4B + Gemma3Vision4B (gemma3.go).
func PresetPair(name string) (LMSpec, ClipSpec, error) {
	switch name {
	case "tiny-gemma":
		return TinyGemma3LM(), SmallGemma3(), nil
	case "mid-gemma":
		return TinyGemma3LM(), MidGemma3(TinyGemma3LM().NEmbd), nil
	case "gemma4b":
		return Gemma3LM4B(), Gemma3Vision4B(), nil
	case "tiny-qwen":
		return TinyQwenLM(), TinyQwen25VL(), nil
	case "mid-qwen":
		return TinyQwenLM(), MidQwen25VL(TinyQwenLM().NEmbd), nil
	case "qwen3b":
		return Qwen25VL3BLM(), Qwen25VL3BVision(), nil
	case "tiny-next", "1b-next":
		l, c, err := PresetPair(strings.TrimSuffix(name, "-next"))
		return l, WithNeXT(c), err
	case "tiny":
		return TinyLM(), TinyClip(), nil
	case "mid":
		return TinyLM(), MidClip(TinyLM().NEmbd), nil
	case "1b":
		c := ClipL336()
		c.ProjDim = LM1B().NEmbd
		return LM1B(), c, nil
	case "7b":
		return LM7B(), ClipL336(), nil
	}
	return LMSpec{}, ClipSpec{}, fmt.Errorf("testmodel: unknown preset %q (want one of %v)", name, Presets)
}
