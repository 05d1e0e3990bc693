package testmodel

// Janus-Pro's mmproj, as the pinned llama.cpp reads it (tools/mtmd/clip.cpp,
// PROJECTOR_TYPE_JANUS_PRO, and models/siglip.cpp): the same SigLIP tower as
// Gemma 3's (siglipTensors), then every patch (no pooling, no merge) through
// a two-layer MLP aligner, mm.0 -> activation -> mm.1, whose activation is
// the tower's own (clip.use_gelu: GELU, as the converter writes for Janus's
// hidden_act). clip.cpp pads an image to a square with gray 127 before
// resizing it; mtmd adds no image delimiters and evaluates the image
// causally. It is a family hiprune-go's encoder does not run, so the
// pipeline routes it through llama.cpp's mtmd unpruned.

// TinyJanusPro is a 2-block, 64-wide SigLIP at 64 px with 16 px patches (a
// 4x4 grid: 16 image tokens), an aligner 64 -> 64 -> 64 (TinyLM's width),
// F32.
func TinyJanusPro() ClipSpec {
	return ClipSpec{ImageSize: 64, PatchSize: 16, NEmbd: 64, NHead: 4, NFF: 128, NLayer: 2, ProjDim: 64,
		Type: F32, Seed: DefaultSeed + 8, Mean: SigLIPMean, Std: SigLIPStd, LayerNormEps: 1e-6,
		UseGELU: true, Projector: ProjectorJanusPro}
}

// janusTensors: the aligner as the converter names it (fc1 is mm.0,
// hidden_layers.0 is mm.1), ProjDim wide like Janus-Pro's (its aligner
// maps the vision width to the LM's and keeps it); clip.cpp reads the LM
// width from mm.1.bias.
func (c ClipSpec) janusTensors() []tensorDef {
	e, p := int64(c.NEmbd), int64(c.ProjDim)
	bias, _, mat := c.tensorMakers()
	return append(c.siglipTensors(),
		mat("mm.0.weight", e, p), bias("mm.0.bias", p),
		mat("mm.1.weight", p, p), bias("mm.1.bias", p),
	)
}

func (c ClipSpec) janusParamCount() int64 {
	e, p := int64(c.NEmbd), int64(c.ProjDim)
	return c.siglipParamCount() + e*p + p + p*p + p
}
