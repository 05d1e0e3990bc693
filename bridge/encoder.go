package bridge

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Layout is the token order and depth of the encoder graph; see bridge.h.
type Layout int

const (
	// LayoutCLSFirst is CLIP's own order (class token first) and the depth
	// LLaVA selects (HF's hidden_states[-2] of the original CLIP: every
	// stored block of a file without clip.vision.feature_layer), what LLaVA
	// was trained with. The default.
	LayoutCLSFirst Layout = C.HP_LAYOUT_CLS_FIRST
	// LayoutLlamaCpp reproduces the pinned llama.cpp's clip exactly,
	// including its shifted patch positions (llama.cpp issue 25814) and its
	// depth, one block short on files without clip.vision.feature_layer
	// (issue 25817).
	LayoutLlamaCpp Layout = C.HP_LAYOUT_LLAMACPP
)

func (l Layout) String() string {
	switch l {
	case LayoutCLSFirst:
		return "cls-first"
	case LayoutLlamaCpp:
		return "llama.cpp"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// FlashMode selects flash attention for the encoder's non-probed layers:
// the LM's switch (FlashAttn), one set of values for both.
type FlashMode = FlashAttn

const (
	// FlashAuto is on where the device supports it, as in llama.cpp's
	// clip, except for CLIP encoders (LLaVA) on the CPU: there ggml's
	// flash-attention kernel is slower than plain attention at 577 tokens
	// (Info().FlashAttn says what was chosen).
	FlashAuto = FlashAttnAuto
	FlashOn   = FlashAttnOn
	FlashOff  = FlashAttnOff
)

// Weights is the type an encoder's 2-D matrix weights (attention, MLP,
// projector) take in memory; the patch embedding, positions, norms and
// biases keep the file's.
type Weights int

const (
	WeightsAsStored Weights = iota // as in the file (f16 in the usual mmproj)
	WeightsF16
	WeightsQ8_0
	WeightsQ4_0
)

// weightNames are the Weights by name; "" is WeightsAsStored.
var weightNames = [...]string{WeightsAsStored: "", WeightsF16: "f16", WeightsQ8_0: "q8_0", WeightsQ4_0: "q4_0"}

// ParseWeights reads a weight type by name: "" (as stored), "f16", "q8_0"
// or "q4_0".
func ParseWeights(s string) (Weights, bool) {
	i := slices.Index(weightNames[:], s)
	return Weights(max(i, 0)), i >= 0
}

// WeightNames are the names of the types weights convert to (not "").
func WeightNames() []string { return slices.Clone(weightNames[1:]) }

func (w Weights) String() string {
	switch {
	case w == WeightsAsStored:
		return "as stored"
	case w > 0 && int(w) < len(weightNames):
		return weightNames[w]
	}
	return fmt.Sprintf("Weights(%d)", int(w))
}

// EncoderParams configure OpenEncoder. The zero value is usable.
type EncoderParams struct {
	// ObjectLayer is the 1-based default object layer (EncodeOptions.ObjectLayer
	// 0); 0 = the family's, min(9, NRun) for CLIP, min(16, NRun) for
	// Qwen2.5-VL and min(hiprune.DefaultObjectLayerSigLIP, NRun) for Gemma 3.
	ObjectLayer int
	Layout      Layout // token order; zero = LayoutCLSFirst
	FlashAttn   FlashMode
	UseGPU      bool // run on a ggml GPU device when one is registered
	Threads     int  // CPU threads; 0 = 4
	// ProbeChunkBytes bounds the attention probabilities a probed block
	// holds at once (Qwen2.5-VL computes them in chunks of query rows);
	// 0 = 128 MiB.
	ProbeChunkBytes int64
	// Weights converts the matrix weights at load (from f32, f16 or bf16;
	// rows must be a multiple of the type's block of 32).
	Weights Weights
	// NoRepack keeps every weight in the device's plain buffer, as
	// llama.cpp's clip does (llama.cpp's --no-repack for an LM). By
	// default, on the CPU, quantized matrix weights go to the first of
	// ggml's extra buffer types that takes them: repacked Q4_0 layouts
	// for the CPU's int8 dot products, AMX where the build targets it
	// (EncoderInfo.WeightBuffer says which).
	NoRepack bool
}

// EncoderInfo describes an opened encoder.
type EncoderInfo struct {
	Projector string
	Backend   string
	ImageSize int // the square input side; for a Dynamic encoder the file's nominal size, unused
	PatchSize int
	// GridW, GridH and NPatches are one image's token grid (for Gemma 3
	// the pooled grid, 16x16 = 256 tokens of Merge x Merge patches); 0 for
	// a Dynamic encoder, whose grid follows the image (Encoding.GridW).
	GridW, GridH int
	NPatches     int
	NEmbd        int
	NHead        int
	NFF          int
	NBlock       int // blocks in the file
	NRun         int // blocks run (depends on the Layout); the deep layer is block NRun (1-based)
	ObjectLayer  int // the default object layer, resolved
	ProjDim      int
	HasCLS       bool
	FlashAttn    bool
	Mean, Std    [3]float32
	Eps          float32
	// Pinpoints are LLaVA-NeXT's any-resolution candidates
	// (clip.vision.image_grid_pinpoints): each image becomes a base view
	// and tiles of ImageSize (imageprep.PreprocessViews), each encoded like
	// a LLaVA-1.5 image. Empty for LLaVA-1.5.
	Pinpoints []imageprep.Size
	// MergeType is how the views' tokens are laid out for the LM
	// (MergeFlat, MergeSpatial or MergeSpatialUnpad).
	MergeType string
	// HasNewline says the file has model.image_newline (Encoder.Newline).
	HasNewline bool
	// Merge is the side of the patch groups one token is made of: 1 for
	// CLIP, 2 for Qwen2.5-VL, 4 for Gemma 3 (its average pooling).
	Merge int
	// Dynamic: the encoder takes any image whose sides are positive
	// multiples of PatchSize*Merge, up to MaxTokens tokens (Qwen2.5-VL;
	// preprocess with DynamicParams). MinPixels and MaxPixels are the
	// resized areas llama.cpp's preprocessing keeps to.
	Dynamic              bool
	MinPixels, MaxPixels int
	MaxTokens            int
	// WAPattern: every WAPattern-th block (1-based) attends over the whole
	// image, the others within WindowSize-pixel windows (0: no windows).
	WAPattern  int
	WindowSize int
	// Split: Encode with EncodeOptions.Deferred and Project work (LLaVA's
	// CLIP; see Project).
	Split bool
	// OnCPU: the graph runs on ggml's CPU backend (not a GPU or other device).
	OnCPU bool
	// WeightType is the type of the matrix weights as loaded ("f16", "q8_0").
	WeightType string
	// WeightBuffer is the ggml buffer type holding those weights: "CPU"
	// (plain), "CPU_REPACK", "AMX", or the GPU's ("CUDA0").
	WeightBuffer string
}

// DynamicParams are the preprocessing parameters of a Dynamic encoder,
// llama.cpp's for the file (imageprep.PreprocessDynamic); ok is false for
// a fixed-size encoder.
func (in EncoderInfo) DynamicParams() (p imageprep.DynamicParams, ok bool) {
	if !in.Dynamic {
		return imageprep.DynamicParams{}, false
	}
	return imageprep.DynamicParams{PatchSize: in.PatchSize, Merge: in.Merge, MinPixels: in.MinPixels,
		MaxPixels: in.MaxPixels, Mean: in.Mean, Std: in.Std}, true
}

// Encoding is one image's encoder output.
type Encoding struct {
	Embd []float32 // GridW*GridH rows of ProjDim, raster order
	// Object and Deep are the per-token scores HiPrune selects with
	// (hiprune.Select(Object, Deep, GridW, GridH, ...)): the attention each
	// token receives at the object and the deep layer, averaged over heads
	// and query rows; for a merging encoder (Merge > 1) the mean over the
	// token's Merge x Merge patches (hiprune.MergeScores).
	Object, Deep []float32
	GridW, GridH int // token grid
	ProjDim      int
	ObjectLayer  int // the block whose attention gave Object (1-based)
	// PatchObject and PatchDeep are the per-patch scores on the PatchW x
	// PatchH patch grid (raster order); with Merge 1 they are Object and
	// Deep themselves.
	PatchObject, PatchDeep []float32
	PatchW, PatchH         int
	Merge                  int
	// Deferred: the encoding was made with EncodeOptions.Deferred, so Embd
	// is empty and Hidden holds GridW*GridH rows of NEmbd floats for
	// Encoder.Project.
	Deferred bool
	Hidden   []float32
	NEmbd    int
}

// Row returns the projected embedding of image token i.
func (e *Encoding) Row(i int) []float32 { return e.Embd[i*e.ProjDim : (i+1)*e.ProjDim] }

// Encoder is the HiPrune-instrumented vision encoder. It is safe for use
// from several goroutines: calls are serialised on one graph (the encoder
// already uses every thread it is given, so running images side by side
// would not be faster on a CPU).
type Encoder struct {
	mu      sync.Mutex
	c       *C.hp_encoder
	info    EncoderInfo
	newline []float32
}

// OpenEncoder loads an mmproj GGUF.
func OpenEncoder(path string, p EncoderParams) (*Encoder, error) {
	Init()
	if err := checkProjectorFile(path); err != nil {
		return nil, fmt.Errorf("mmproj: %w", err)
	}
	cp := C.hp_encoder_params{
		object_layer: C.int(p.ObjectLayer),
		layout:       C.int(p.Layout),
		flash_attn:   -1,
		n_threads:    C.int(p.Threads),
	}
	cp.probe_chunk_bytes = C.longlong(p.ProbeChunkBytes)
	cp.weights = C.int(p.Weights)
	switch p.FlashAttn {
	case FlashOn:
		cp.flash_attn = 1
	case FlashOff:
		cp.flash_attn = 0
	}
	if p.UseGPU {
		cp.use_gpu = 1
	}
	if p.NoRepack {
		cp.no_extra_bufts = 1
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	var h *C.hp_encoder
	if err := goErr(C.hp_encoder_open(cpath, &cp, &h, eb, errBufLen), eb, "open encoder"); err != nil {
		return nil, fmt.Errorf("mmproj: %w", err)
	}
	var ci C.hp_encoder_info
	C.hp_encoder_get_info(h, &ci)
	e := &Encoder{c: h, info: infoFromC(&ci)}
	runtime.SetFinalizer(e, func(e *Encoder) { e.Close() })
	a, err := readAnyRes(path, e.info.ImageSize, e.info.ProjDim)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("mmproj: %w", err)
	}
	// LLaVA-1.6 was trained with a newline embedding after every row; the
	// pinned llama.cpp never adds it, so only its layout can go without.
	if a.merge == MergeSpatialUnpad && a.newline == nil && p.Layout != LayoutLlamaCpp && len(a.pinpoints) > 0 {
		e.Close()
		return nil, fmt.Errorf("mmproj: %s: missing tensor %s (mm_patch_merge_type %s puts it after every row): %w",
			path, newlineTensor, a.merge, ErrFormat)
	}
	e.info.Pinpoints, e.info.MergeType, e.info.HasNewline = a.pinpoints, a.merge, a.newline != nil
	e.newline = a.newline
	return e, nil
}

// Newline returns a copy of model.image_newline (ProjDim floats), or nil.
func (e *Encoder) Newline() []float32 { return append([]float32(nil), e.newline...) }

func infoFromC(ci *C.hp_encoder_info) EncoderInfo {
	in := EncoderInfo{
		Projector:    C.GoString(&ci.projector[0]),
		Backend:      C.GoString(&ci.backend[0]),
		ImageSize:    int(ci.image_size),
		PatchSize:    int(ci.patch_size),
		GridW:        int(ci.grid_w),
		GridH:        int(ci.grid_h),
		NPatches:     int(ci.n_patches),
		NEmbd:        int(ci.n_embd),
		NHead:        int(ci.n_head),
		NFF:          int(ci.n_ff),
		NBlock:       int(ci.n_block),
		NRun:         int(ci.n_run),
		ObjectLayer:  int(ci.object_layer),
		ProjDim:      int(ci.proj_dim),
		HasCLS:       ci.has_cls != 0,
		FlashAttn:    ci.flash_attn != 0,
		Eps:          float32(ci.eps),
		Merge:        max(int(ci.n_merge), 1),
		Dynamic:      ci.dynamic != 0,
		MinPixels:    int(ci.min_pixels),
		MaxPixels:    int(ci.max_pixels),
		MaxTokens:    int(ci.max_tokens),
		WAPattern:    int(ci.n_wa_pattern),
		WindowSize:   int(ci.window_size),
		Split:        ci.split != 0,
		OnCPU:        ci.on_cpu != 0,
		WeightType:   C.GoString(&ci.weight_type[0]),
		WeightBuffer: C.GoString(&ci.weight_buffer[0]),
	}
	for i := 0; i < 3; i++ {
		in.Mean[i] = float32(ci.mean[i])
		in.Std[i] = float32(ci.std[i])
	}
	return in
}

// Info describes the encoder.
func (e *Encoder) Info() EncoderInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.info
	in.Pinpoints = append([]imageprep.Size(nil), in.Pinpoints...)
	return in
}

// Close frees the encoder's weights and graph. Safe to call twice.
func (e *Encoder) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		C.hp_encoder_free(e.c)
		e.c = nil
	}
}

// EncodeOptions are the per-image settings of Encode. The zero value uses
// what was given at open.
type EncodeOptions struct {
	// ObjectLayer is the 1-based block whose attention gives the object
	// scores; 0 = the encoder's default (EncoderInfo.ObjectLayer). The C
	// side resolves and range-checks it (bridge.h, hp_encoder_encode); a
	// change rebuilds the graph under the encoder's lock, so sessions
	// sharing the encoder cannot race on it.
	ObjectLayer int
	// Threads for this call; <= 0 keeps EncoderParams.Threads.
	Threads int
	// Deferred stops the encoder after the deep block's attention: the
	// scores are complete, and Encoding.Hidden holds what Project needs to
	// finish the embeddings of any tokens (an encoder with Info().Split).
	Deferred bool
}

// distinct returns a, or nil when a shares b's storage (a dst last filled
// by an encoder that does not merge), so that b can be read while a is
// written.
func distinct(a, b []float32) []float32 {
	if cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] {
		return nil
	}
	return a
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// imageGrids checks img's size against the encoder and returns its token
// and patch grids.
func (in EncoderInfo) imageGrids(img *imageprep.Float) (tw, th, pw, ph int, err error) {
	if !in.Dynamic {
		if img.W != in.ImageSize || img.H != in.ImageSize {
			return 0, 0, 0, 0, fmt.Errorf("encode: image is %dx%d, the encoder takes %dx%d: %w", img.W, img.H, in.ImageSize, in.ImageSize, ErrArg)
		}
		return in.GridW, in.GridH, in.GridW * in.Merge, in.GridH * in.Merge, nil
	}
	a := in.PatchSize * in.Merge
	if img.W < a || img.H < a || img.W%a != 0 || img.H%a != 0 {
		return 0, 0, 0, 0, fmt.Errorf("encode: image is %dx%d, the encoder takes sides that are positive multiples of %d (preprocess it first): %w",
			img.W, img.H, a, ErrArg)
	}
	tw, th = img.W/a, img.H/a
	if tw > in.MaxTokens/th {
		return 0, 0, 0, 0, fmt.Errorf("encode: image is %dx%d, %d tokens: more than the %d the encoder takes: %w", img.W, img.H, tw*th, in.MaxTokens, ErrArg)
	}
	return tw, th, tw * in.Merge, th * in.Merge, nil
}

// Encode runs one preprocessed image through the encoder (ImageSize x
// ImageSize as imageprep.Preprocess makes it; for a Dynamic encoder the
// size imageprep.PreprocessDynamic gives), writing into dst's buffers
// (reallocated only when too small). dst may be nil; reusing it spares the
// page faults of a fresh multi-megabyte allocation per image.
func (e *Encoder) Encode(dst *Encoding, img *imageprep.Float, o EncodeOptions) (*Encoding, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return nil, fmt.Errorf("encode: encoder is closed: %w", ErrArg)
	}
	if img == nil {
		return nil, fmt.Errorf("encode: nil image: %w", ErrArg)
	}
	in := e.info
	if img.W < 1 || img.H < 1 || len(img.Pix) != img.W*img.H*3 {
		return nil, fmt.Errorf("encode: %dx%d image buffer has %d floats, want %d: %w", img.W, img.H, len(img.Pix), max(img.W*img.H*3, 0), ErrArg)
	}
	tw, th, pw, ph, err := in.imageGrids(img)
	if err != nil {
		return nil, err
	}
	if o.Deferred && !in.Split {
		return nil, fmt.Errorf("encode: projector type %s does not split its encoder: %w", in.Projector, ErrUnsup)
	}
	out := dst
	if out == nil {
		out = &Encoding{}
	}
	rows := &out.Embd
	if o.Deferred {
		out.Embd = out.Embd[:0]
		rows = &out.Hidden
		out.Hidden = grow(out.Hidden, tw*th*in.NEmbd)
	} else {
		out.Embd = grow(out.Embd, tw*th*in.ProjDim)
	}
	out.Deferred, out.NEmbd = o.Deferred, in.NEmbd
	out.PatchObject = grow(out.PatchObject, pw*ph)
	out.PatchDeep = grow(out.PatchDeep, pw*ph)
	out.GridW, out.GridH, out.ProjDim = tw, th, in.ProjDim
	out.PatchW, out.PatchH, out.Merge = pw, ph, in.Merge
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	var used C.int
	// The C side copies img before computing and writes the outputs once;
	// Go memory is passed for the duration of the call only.
	pix, obj, deep := (*C.float)(unsafe.Pointer(&img.Pix[0])), (*C.float)(unsafe.Pointer(&out.PatchObject[0])), (*C.float)(unsafe.Pointer(&out.PatchDeep[0]))
	dstRows := (*C.float)(unsafe.Pointer(&(*rows)[0]))
	var code C.int
	if o.Deferred {
		code = C.hp_encoder_encode_scores(e.c, pix, C.int(img.W), C.int(img.H), C.int(o.Threads), C.int(o.ObjectLayer), &used,
			dstRows, obj, deep, eb, errBufLen)
	} else {
		code = C.hp_encoder_encode(e.c, pix, C.int(img.W), C.int(img.H), C.int(o.Threads), C.int(o.ObjectLayer), &used,
			dstRows, obj, deep, eb, errBufLen)
	}
	if err := goErr(code, eb, "encode"); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	out.ObjectLayer = int(used)
	if in.Merge == 1 {
		out.Object, out.Deep = out.PatchObject, out.PatchDeep
		return out, nil
	}
	if out.Object, err = hiprune.MergeScores(distinct(out.Object, out.PatchObject), out.PatchObject, pw, ph, in.Merge); err != nil {
		return nil, fmt.Errorf("encode: object scores: %w", err)
	}
	if out.Deep, err = hiprune.MergeScores(distinct(out.Deep, out.PatchDeep), out.PatchDeep, pw, ph, in.Merge); err != nil {
		return nil, fmt.Errorf("encode: deep scores: %w", err)
	}
	return out, nil
}

// Project finishes a Deferred encoding for the given tokens (indices into
// its GridW*GridH tokens, in any order, at most GridW*GridH of them): it runs the
// deep block's MLP, the post-norm and the projector on their rows only and
// returns len(tokens) rows of ProjDim floats in dst (grown when too
// small), each the row Encode would have given that token. threads <= 0
// keeps EncoderParams.Threads.
func (e *Encoder) Project(dst []float32, enc *Encoding, tokens []int, threads int) ([]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return nil, fmt.Errorf("project: encoder is closed: %w", ErrArg)
	}
	if enc == nil || !enc.Deferred || enc.NEmbd != e.info.NEmbd || len(enc.Hidden) != enc.GridW*enc.GridH*enc.NEmbd {
		return nil, fmt.Errorf("project: not a deferred encoding of this encoder: %w", ErrArg)
	}
	n := enc.GridW * enc.GridH
	if len(tokens) == 0 {
		return nil, fmt.Errorf("project: no tokens: %w", ErrArg)
	}
	w := enc.NEmbd
	in := make([]float32, len(tokens)*w)
	for j, i := range tokens {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("project: token %d is outside the image's %d: %w", i, n, ErrArg)
		}
		copy(in[j*w:(j+1)*w], enc.Hidden[i*w:(i+1)*w])
	}
	dst = grow(dst, len(tokens)*e.info.ProjDim)
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	code := C.hp_encoder_project(e.c, (*C.float)(unsafe.Pointer(&in[0])), C.int(len(tokens)), C.int(threads),
		(*C.float)(unsafe.Pointer(&dst[0])), eb, errBufLen)
	if err := goErr(code, eb, "project"); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	return dst, nil
}
