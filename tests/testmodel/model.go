package testmodel

import (
	"fmt"
	"math"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// llama_ftype values (include/llama.h) for general.file_type.
var lmFileType = map[gguf.Type]uint32{F32: 0, F16: 1, Q4_0: 2}

// tensors lists the LM tensors in file order.
func (s LMSpec) tensors() []tensorDef {
	if s.arch() == ArchGemma3 {
		return s.gemma3Tensors()
	}
	e, f, v := int64(s.NEmbd), int64(s.NFF), int64(s.NVocab())
	kv := e / int64(s.NHead) * int64(s.NHeadKV)
	se, sf := 1/math.Sqrt(float64(e)), 1/math.Sqrt(float64(f))
	norm := func(name string) tensorDef {
		return tensorDef{name: name, typ: F32, ne: []int64{e}, mean: 1, std: 0.02}
	}
	mat := func(name string, ne0, ne1 int64, std float64) tensorDef {
		return tensorDef{name: name, typ: s.Type, ne: []int64{ne0, ne1}, std: std}
	}
	bias := func(name string, n int64) tensorDef {
		return tensorDef{name: name, typ: F32, ne: []int64{n}, std: 0.02}
	}
	qwen := s.arch() == ArchQwen2VL
	ts := []tensorDef{mat("token_embd.weight", e, v, se)}
	for i := 0; i < s.NLayer; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts, norm(p+"attn_norm.weight"), mat(p+"attn_q.weight", e, e, se))
		if qwen {
			ts = append(ts, bias(p+"attn_q.bias", e))
		}
		ts = append(ts, mat(p+"attn_k.weight", e, kv, se))
		if qwen {
			ts = append(ts, bias(p+"attn_k.bias", kv))
		}
		ts = append(ts, mat(p+"attn_v.weight", e, kv, se))
		if qwen {
			ts = append(ts, bias(p+"attn_v.bias", kv))
		}
		ts = append(ts,
			mat(p+"attn_output.weight", e, e, se),
			norm(p+"ffn_norm.weight"),
			mat(p+"ffn_gate.weight", e, f, se),
			mat(p+"ffn_up.weight", e, f, se),
			mat(p+"ffn_down.weight", f, e, sf),
		)
	}
	ts = append(ts, norm("output_norm.weight"))
	if !s.TiedOutput {
		ts = append(ts, mat("output.weight", e, v, se))
	}
	return ts
}

// Weights supplies trained tensor data by GGUF tensor name: the values in
// ggml order (ne[0] fastest), converted to the spec's type when written.
type Weights map[string][]float32

// source returns the tensor's data: from ws when given (every tensor must
// be there, with the right element count), else generated from seed.
func (d tensorDef) sourceFrom(ws Weights, seed uint64) (gguf.Source, error) {
	if ws == nil {
		return d.source(seed), nil
	}
	v, ok := ws[d.name]
	if !ok {
		return nil, fmt.Errorf("testmodel: weights lack tensor %s", d.name)
	}
	n := int64(1)
	for _, x := range d.ne {
		n *= x
	}
	if int64(len(v)) != n {
		return nil, fmt.Errorf("testmodel: tensor %s has %d values, shape %v needs %d", d.name, len(v), d.ne, n)
	}
	return gguf.Float32Source(d.typ, d.ne, v), nil
}

// NewLMWriter returns a gguf.Writer holding the LM's metadata and tensors
// (data is generated when the writer is written).
func NewLMWriter(s LMSpec) (*gguf.Writer, error) { return NewLMWriterWeights(s, nil) }

// NewLMWriterWeights is NewLMWriter with the tensors' values taken from ws
// (nil: generated).
func NewLMWriterWeights(s LMSpec, ws Weights) (*gguf.Writer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	voc, err := BuildVocabSpecials(s.VocabWords, s.Specials)
	if err != nil {
		return nil, err
	}
	a := s.arch() + "."
	w := gguf.NewWriter()
	w.AddString("general.architecture", s.arch())
	w.AddString("general.name", fmt.Sprintf("hiprune testmodel lm %dx%d %v seed %d", s.NLayer, s.NEmbd, s.Type, s.Seed))
	w.AddUint32("general.file_type", lmFileType[s.Type])
	w.AddUint32("general.quantization_version", 2)
	w.SetAlignment(gguf.DefaultAlignment)
	w.AddUint32(a+"vocab_size", uint32(voc.Len()))
	w.AddUint32(a+"context_length", uint32(s.NCtx))
	w.AddUint32(a+"embedding_length", uint32(s.NEmbd))
	w.AddUint32(a+"block_count", uint32(s.NLayer))
	w.AddUint32(a+"feed_forward_length", uint32(s.NFF))
	if s.HeadDim > 0 {
		w.AddUint32(a+"rope.dimension_count", uint32(s.HeadDim))
		w.AddUint32(a+"attention.key_length", uint32(s.HeadDim))
		w.AddUint32(a+"attention.value_length", uint32(s.HeadDim))
	} else {
		w.AddUint32(a+"rope.dimension_count", uint32(s.NEmbd/s.NHead))
	}
	if s.SlidingWindow > 0 {
		w.AddUint32(a+"attention.sliding_window", uint32(s.SlidingWindow))
	}
	if s.RopeScale > 0 {
		w.AddString(a+"rope.scaling.type", "linear")
		w.AddFloat32(a+"rope.scaling.factor", s.RopeScale)
	}
	w.AddUint32(a+"attention.head_count", uint32(s.NHead))
	w.AddUint32(a+"attention.head_count_kv", uint32(s.NHeadKV))
	w.AddFloat32(a+"attention.layer_norm_rms_epsilon", LMRMSEps)
	if s.RopeFreqBase > 0 {
		w.AddFloat32(a+"rope.freq_base", s.RopeFreqBase)
	} else {
		w.AddFloat32(a+"rope.freq_base", LMRopeFreq)
	}
	if len(s.RopeSections) > 0 {
		w.AddInt32Array(a+"rope.dimension_sections", s.RopeSections)
	}
	w.AddString("tokenizer.ggml.model", "llama")
	w.AddStringArray("tokenizer.ggml.tokens", voc.Tokens)
	w.AddFloat32Array("tokenizer.ggml.scores", voc.Scores)
	w.AddInt32Array("tokenizer.ggml.token_type", voc.Types)
	w.AddUint32("tokenizer.ggml.bos_token_id", BOSID)
	eos := EOSID
	if s.EOSPiece != "" {
		eos, _ = voc.ID(s.EOSPiece)
	}
	w.AddUint32("tokenizer.ggml.eos_token_id", uint32(eos))
	w.AddUint32("tokenizer.ggml.unknown_token_id", UnkID)
	w.AddBool("tokenizer.ggml.add_bos_token", !s.NoBOS)
	w.AddBool("tokenizer.ggml.add_eos_token", false)
	if s.ChatTemplate != "" {
		w.AddString("tokenizer.chat_template", s.ChatTemplate)
	}
	for _, t := range s.tensors() {
		src, err := t.sourceFrom(ws, s.Seed)
		if err != nil {
			return nil, err
		}
		w.AddTensor(t.name, t.typ, t.ne, src)
	}
	return w, w.Err()
}

// tensorMakers returns the generators of a vision tower's three kinds of
// tensors: biases, layer-norm weights (width n_embd) and matrices (std
// 1/sqrt(fan-in), in the spec's type).
func (c ClipSpec) tensorMakers() (bias func(string, int64) tensorDef, lnW func(string) tensorDef, mat func(string, int64, int64) tensorDef) {
	bias = func(name string, n int64) tensorDef {
		return tensorDef{name: name, typ: F32, ne: []int64{n}, std: 0.02}
	}
	lnW = func(name string) tensorDef {
		return tensorDef{name: name, typ: F32, ne: []int64{int64(c.NEmbd)}, mean: 1, std: 0.05}
	}
	matType := c.Type
	switch c.MatQuant {
	case "q8_0":
		matType = gguf.TypeQ8_0
	case "q4_0":
		matType = gguf.TypeQ4_0
	}
	mat = func(name string, ne0, ne1 int64) tensorDef {
		return tensorDef{name: name, typ: matType, ne: []int64{ne0, ne1}, std: 1 / math.Sqrt(float64(ne0))}
	}
	return bias, lnW, mat
}

// tensors lists the mmproj tensors in file order (the LLaVA converter's order:
// projector first, then the CLIP state dict).
func (c ClipSpec) tensors() []tensorDef {
	switch c.projector() {
	case ProjectorGemma3:
		return c.gemma3Tensors()
	case ProjectorQwen25VL:
		return c.qwenTensors()
	case ProjectorJanusPro:
		return c.janusTensors()
	}
	e, f, p := int64(c.NEmbd), int64(c.NFF), int64(c.ProjDim)
	ps := int64(c.PatchSize)
	bias, lnW, mat := c.tensorMakers()
	ts := []tensorDef{
		mat("mm.0.weight", e, p), bias("mm.0.bias", p),
		mat("mm.2.weight", p, p), bias("mm.2.bias", p),
		{name: "v.class_embd", typ: F32, ne: []int64{e}, std: 0.5},
		// conv kernel [KW, KH, IC, OC] in ggml order; always F16 (the converter
		// stores 4-D tensors in f16 even with --use-f32)
		{name: "v.patch_embd.weight", typ: F16, ne: []int64{ps, ps, 3, e}, std: 1 / math.Sqrt(float64(3*ps*ps))},
		{name: "v.position_embd.weight", typ: c.Type, ne: []int64{e, int64(c.NPatches() + 1)}, std: 0.2},
		lnW("v.pre_ln.weight"), bias("v.pre_ln.bias", e),
	}
	for i := 0; i < c.NLayer; i++ {
		pre := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			mat(pre+"attn_k.weight", e, e), bias(pre+"attn_k.bias", e),
			mat(pre+"attn_v.weight", e, e), bias(pre+"attn_v.bias", e),
			mat(pre+"attn_q.weight", e, e), bias(pre+"attn_q.bias", e),
			mat(pre+"attn_out.weight", e, e), bias(pre+"attn_out.bias", e),
			lnW(pre+"ln1.weight"), bias(pre+"ln1.bias", e),
			// legacy LLaVA naming, kept by real files: fc1 (n_embd -> n_ff) is
			// stored as ffn_down and fc2 (n_ff -> n_embd) as ffn_up; clip.cpp
			// swaps them back because ffn_down's ne[0] == n_embd
			mat(pre+"ffn_down.weight", e, f), bias(pre+"ffn_down.bias", f),
			mat(pre+"ffn_up.weight", f, e), bias(pre+"ffn_up.bias", e),
			lnW(pre+"ln2.weight"), bias(pre+"ln2.bias", e),
		)
	}
	if c.WithPostLN {
		ts = append(ts, lnW("v.post_ln.weight"), bias("v.post_ln.bias", e))
	}
	if c.Newline {
		// LLaVA initialises it as randn * 1/sqrt(width), like a token embedding.
		ts = append(ts, tensorDef{name: "model.image_newline", typ: F32, ne: []int64{p}, std: 1 / math.Sqrt(float64(p))})
	}
	return ts
}

// NewMMProjWriter returns a gguf.Writer holding the mmproj's metadata and
// tensors.
func NewMMProjWriter(c ClipSpec) (*gguf.Writer, error) { return NewMMProjWriterWeights(c, nil) }

// NewMMProjWriterWeights is NewMMProjWriter with the tensors' values taken
// from ws (nil: generated).
func NewMMProjWriterWeights(c ClipSpec, ws Weights) (*gguf.Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	const v = "clip.vision."
	w := gguf.NewWriter()
	w.AddString("general.architecture", "clip")
	w.AddString("general.name", fmt.Sprintf("hiprune testmodel clip %dx%d %v seed %d", c.NLayer, c.NEmbd, c.Type, c.Seed))
	llava := c.projector() == ProjectorMLP
	if llava {
		w.AddString("general.description", "image encoder for LLaVA")
	} else {
		w.AddString("general.description", "image encoder for "+c.projector())
	}
	w.AddUint32("general.file_type", lmFileType[c.Type])
	w.SetAlignment(gguf.DefaultAlignment)
	w.AddBool("clip.has_text_encoder", false)
	w.AddBool("clip.has_vision_encoder", true)
	if llava {
		w.AddBool("clip.has_llava_projector", true)
	}
	w.AddString("clip.projector_type", c.projector())
	if c.MergeFactor > 0 {
		w.AddUint32(v+"projector.scale_factor", uint32(c.MergeFactor))
	}
	w.AddBool("clip.use_gelu", c.UseGELU)
	if c.UseSiLU {
		w.AddBool("clip.use_silu", true)
	}
	if c.projector() == ProjectorQwen25VL {
		w.AddUint32(v+"spatial_merge_size", QwenMerge)
		w.AddUint32(v+"n_wa_pattern", uint32(c.WAPattern))
		if c.WindowSize > 0 {
			w.AddUint32(v+"window_size", uint32(c.WindowSize))
		}
	}
	w.AddUint32(v+"image_size", uint32(c.ImageSize))
	w.AddUint32(v+"patch_size", uint32(c.PatchSize))
	w.AddUint32(v+"embedding_length", uint32(c.NEmbd))
	w.AddUint32(v+"feed_forward_length", uint32(c.NFF))
	w.AddUint32(v+"projection_dim", uint32(c.ProjDim))
	w.AddUint32(v+"attention.head_count", uint32(c.NHead))
	w.AddFloat32(v+"attention.layer_norm_epsilon", c.LayerNormEps)
	w.AddUint32(v+"block_count", uint32(c.NLayer))
	if c.FeatureLayer > 0 {
		w.AddInt32Array(v+"feature_layer", []int32{int32(c.FeatureLayer)})
	}
	if len(c.GridPinpoints) > 0 {
		w.AddInt32Array(v+"image_grid_pinpoints", c.GridPinpoints)
	}
	if c.MergeType != "" {
		w.AddString(v+"mm_patch_merge_type", c.MergeType)
	}
	w.AddFloat32Array(v+"image_mean", c.Mean[:])
	w.AddFloat32Array(v+"image_std", c.Std[:])
	for _, t := range c.tensors() {
		src, err := t.sourceFrom(ws, c.Seed)
		if err != nil {
			return nil, err
		}
		w.AddTensor(t.name, t.typ, t.ne, src)
	}
	return w, w.Err()
}

// WriteLM writes the LM to path (atomically: temp file + rename).
func WriteLM(path string, s LMSpec) error {
	w, err := NewLMWriter(s)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// WriteMMProj writes the mmproj to path (atomically: temp file + rename).
func WriteMMProj(path string, c ClipSpec) error {
	w, err := NewMMProjWriter(c)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}
