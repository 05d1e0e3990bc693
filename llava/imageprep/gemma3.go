package imageprep

// What llama.cpp does for Gemma 3 (projector type gemma3; read from
// tools/mtmd/clip.cpp, clip_image_preprocess, the case it shares with
// GLM-Edge and InternVL):
//
//	img_tool::resize(*img, resized, {S, S}, RESIZE_ALGO_BILINEAR)
//	normalize_image_u8_to_f32(resized, f32, image_mean, image_std)
//
// with S = clip.vision.image_size (896). The call leaves add_padding and
// pad_color at their defaults (true and {0, 0, 0}), so the image is
// letterboxed exactly as for LLaVA-1.5 (same fit, same bilinear filter,
// same centring, an S x S input copied verbatim) but on a black canvas,
// not LLaVA's mean colour. Hugging Face's Gemma 3 processor stretches the
// image to 896 x 896 instead; hiprune-go follows llama.cpp, whose
// embeddings it must reproduce. Geometry and DrawMask describe the layout
// unchanged (the pad colour does not move anything).

// Gemma3PadColor is the letterbox colour llama.cpp uses for Gemma 3:
// img_tool::resize's default, black.
var Gemma3PadColor = [3]uint8{0, 0, 0}

// Gemma3Params are the values stored in Gemma 3's mmproj: SigLIP at 896 px,
// mean and std 0.5.
var Gemma3Params = Params{
	ImageSize: 896,
	Mean:      [3]float32{0.5, 0.5, 0.5},
	Std:       [3]float32{0.5, 0.5, 0.5},
}

// PreprocessGemma3 letterboxes img onto a black ImageSize x ImageSize
// canvas and normalises it, step for step as llama.cpp's
// clip_image_preprocess does for Gemma 3 (see above).
func PreprocessGemma3(img *RGB, p Params) (*Float, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := img.validate(); err != nil {
		return nil, err
	}
	return Normalize(padResize(img, p.ImageSize, p.ImageSize, Gemma3PadColor), p)
}
