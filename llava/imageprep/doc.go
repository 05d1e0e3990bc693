// Package imageprep decodes images and prepares them for the LLaVA-1.5 vision
// tower exactly as llama.cpp (the copy vendored in github.com/ollama/ollama
// v0.17.4) does, in pure Go, so that the float buffer it produces can be
// handed to clip_encode_float_image unchanged.
//
// # What llama.cpp does for LLaVA-1.5 (projector type "mlp")
//
// Read from tools/mtmd/clip.cpp, clip_image_preprocess, case
// PROJECTOR_TYPE_MLP with no image_res_candidates ("pad_to_square"):
//
//  1. It does NOT pad to a square and then resize, as the Python LLaVA code
//     does. The code sets up a longer_side x longer_side buffer, but then calls
//     img_tool::resize(img, temp, {S, S}, RESIZE_ALGO_BILINEAR,
//     add_padding=true, pad_color={122, 116, 104}), which overwrites it: the
//     image is first resized keeping its aspect ratio and then letterboxed
//     into an S x S canvas (S = clip.vision.image_size, 336).
//  2. Exactly S x S input: plain copy, no resampling (identity).
//  3. Otherwise, in float32: scale = min(S/W, S/H);
//     newW = min(int(ceil(W*scale)), S), newH likewise. The image is resized
//     to newW x newH with img_tool's resize_bilinear, even when newW == W and
//     newH == H (e.g. a 336x200 input), which is then NOT the identity.
//  4. resize_bilinear samples source coordinate x*(W-1)/newW (align-corners-
//     like, no half-pixel offset), interpolates in float32 as
//     s + (e-s)*t (first along x on the two rows, then along y) and stores
//     static_cast<uint8_t>, i.e. truncates toward zero; there is no rounding.
//     The x+1 / y+1 neighbour is not clamped in C++; it only lies outside the
//     image when the source is one pixel wide/high, where the weight is
//     exactly 0, so clamping (as we do) gives the same value.
//  5. The canvas is filled with pad colour RGB(122, 116, 104) (LLaVA's
//     image_mean * 255, hard-coded; it does not follow the GGUF's image_mean)
//     and the resized image is pasted at ((S-newW)/2, (S-newH)/2), integer
//     division, so an odd remainder leaves one more padding row/column at the
//     bottom/right.
//  6. normalize_image_u8_to_f32: out = (float(v)/255.0f - mean[c]) / std[c],
//     in float32, into clip_image_f32.buf, which is interleaved RGB
//     (HWC: buf[3*(y*nx+x)+c]), nx = ny = S. clip_encode_float_image copies
//     such a buffer verbatim, so Float.Pix uses the same layout.
//
// Fused multiply-adds: GCC contracts C++ float expressions even with
// -std=c++17, so with FMA in the target flags (x86-64 -march=native on recent
// CPUs, every arm64 build) img_tool's lerp runs as one FMA. The Go code
// rounds every product explicitly (float32(...)), which Go needs on arm64,
// where it fuses otherwise: an unrounded x*(W-1)/newW fused into the
// fraction px - floor(px) changed a few bytes of every resized image (make
// cross-test caught it). The remaining lerp difference moves a truncated
// byte only when s + (e-s)*t lies within one float32 ulp of an integer,
// which no image of the parity tests hits on either architecture.
//
// Qwen2-VL / Qwen2.5-VL images keep their aspect ratio and (about) their
// size instead: see dynamic.go (SmartResize, PreprocessDynamic), bit-exact
// with clip_image_preprocess for those projectors.
//
// # Decoding
//
// llama.cpp (mtmd_helper_bitmap_init_from_buf) decodes with stb_image,
// asking for 3 channels. That drops alpha without compositing: a transparent
// pixel keeps its stored (non-premultiplied) RGB. 16-bit PNG samples are
// reduced with v>>8. Decode mirrors this. For JPEG, stb upsamples chroma
// with its "fancy" triangular filter and converts YCbCr with its own
// fixed-point formula (the scalar path: with 3 output channels stb's SSE2
// colour kernel is not used); Decode reproduces both on the planes Go's
// decoder returns, so only the IDCT rounding differs (rarely, by 1). For GIF,
// stb's first frame starts black; transparent pixels stay black; pixels
// outside the first frame's rectangle get the global palette's background
// entry when the background index is > 0, copied in stb's internal BGR order
// (red and blue swapped), which Decode mirrors. stb cannot read WebP; Decode
// accepts it (via golang.org/x/image/webp) with Go's own colour conversion.
//
// Checked against stb_image 2.27 (the system copy the project compiles
// llama.cpp with): PNG and GIF pixels identical; JPEG (4:2:0 and 4:4:4,
// grey) within IDCT rounding, mean |diff| about 0.03-0.05 levels, max 3
// (Go's plain nearest-chroma conversion is about 6.7 levels off on sharp
// colour edges). Decode is stricter than stb on damaged files, on purpose:
// it refuses a GIF whose image data is cut short and a PNG cut inside
// IEND or with a bad CRC, which stb decodes; a truncated or EOI-less JPEG is
// refused by both.
package imageprep
