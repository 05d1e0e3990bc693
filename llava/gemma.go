package llava

// Gemma 3 images (projector type gemma3), as llama.cpp's mtmd runs them,
// with the tokens pruned in between:
//
//   - Preprocessing: letterboxed onto a black 896 x 896 canvas
//     (imageprep.PreprocessGemma3), SigLIP's 64 x 64 patches, average-pooled
//     4 x 4 into a 16 x 16 grid of 256 tokens.
//   - Scores: SigLIP has no class token, so a patch's score is the mean
//     attention it receives over heads and all patch queries, at the object
//     layer (13 by default, hiprune.DefaultObjectLayerSigLIP) and the last
//     block; a token's score is the mean of its 16 patches'. Selection runs
//     on the pooled 16 x 16 grid; the default budget is a third (85 of 256).
//   - Prompt: mtmd writes <start_of_image> before and <end_of_image> after
//     each image; the pipeline adds the same tokens around each ImageMarker.
//   - Language model: the kept tokens take consecutive positions, as the
//     whole image's 256 would, and attend to each other non-causally: mtmd
//     decodes a Gemma 3 image with causal attention off
//     (mtmd_decode_use_non_causal), in batches of the context's batch size,
//     and so does the session (bridge.Context.DecodeEmbeddingsNonCausal).

const projGemma3 = "gemma3"

// imageDelimiters are the texts mtmd puts around each image of projector
// type typ (tools/mtmd/mtmd.cpp, img_beg and img_end) for the families the
// pipeline runs itself.
func imageDelimiters(typ string) (beg, end string) {
	switch typ {
	case projQwen25VL:
		return "<|vision_start|>", "<|vision_end|>"
	case projGemma3:
		return "<start_of_image>", "<end_of_image>"
	}
	return "", ""
}

// nonCausalImages reports whether mtmd decodes typ's image tokens with
// causal attention off (mtmd_decode_use_non_causal: Gemma 3 only).
func nonCausalImages(typ string) bool { return typ == projGemma3 }
