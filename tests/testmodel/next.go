package testmodel

// NeXTPinpoints are LLaVA-1.6's image_grid_pinpoints in units of the view
// side (336 px for CLIP-L/336): 1x2, 2x1, 2x2, 3x1 and 1x3 tiles.
var NeXTPinpoints = [][2]int32{{1, 2}, {2, 1}, {2, 2}, {3, 1}, {1, 3}}

// WithNeXT turns a LLaVA-1.5 mmproj spec into a LLaVA-NeXT (1.6) one, with
// the metadata llama.cpp's legacy converter writes for llava-v1.6 models:
// clip.vision.image_grid_pinpoints (NeXTPinpoints times ImageSize),
// mm_patch_merge_type "spatial_unpad" and the model.image_newline tensor.
// The encoder itself is unchanged: LLaVA-1.6 uses the same CLIP-L/336 and
// MLP projector as 1.5.
func WithNeXT(c ClipSpec) ClipSpec {
	c.GridPinpoints = nil
	for _, p := range NeXTPinpoints {
		c.GridPinpoints = append(c.GridPinpoints, p[0]*int32(c.ImageSize), p[1]*int32(c.ImageSize))
	}
	c.MergeType = "spatial_unpad"
	c.Newline = true
	return c
}
