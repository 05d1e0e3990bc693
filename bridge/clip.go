package bridge

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Clip is llama.cpp's own clip encoder (tools/mtmd/clip.cpp), exposed for
// parity tests and baselines. Not for the serving path.
type Clip struct {
	mu sync.Mutex
	c  *C.hp_clip
}

// OpenClip loads an mmproj with llama.cpp's clip. flash: -1 auto, 0 off, 1 on.
func OpenClip(path string, useGPU bool, flash int) (*Clip, error) {
	Init()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	gpu := C.int(0)
	if useGPU {
		gpu = 1
	}
	var h *C.hp_clip
	if err := goErr(C.hp_clip_open(cpath, gpu, C.int(flash), &h, eb, errBufLen), eb, "clip open"); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	c := &Clip{c: h}
	runtime.SetFinalizer(c, func(c *Clip) { c.Close() })
	return c, nil
}

// Close frees the clip context.
func (c *Clip) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		C.hp_clip_free(c.c)
		c.c = nil
	}
}

// ImageSize is the model's square input side.
func (c *Clip) ImageSize() int { return int(C.hp_clip_image_size(c.c)) }

// NEmbd is the projector's output width.
func (c *Clip) NEmbd() int { return int(C.hp_clip_n_mmproj_embd(c.c)) }

// NTokens is the number of embeddings clip emits for an nx x ny input.
func (c *Clip) NTokens(nx, ny int) int {
	return int(C.hp_clip_n_output_tokens(c.c, C.int(nx), C.int(ny)))
}

// Preprocess runs clip_image_preprocess on an 8-bit RGB image and returns
// the float images it makes: one for LLaVA-1.5, the base view and the tiles
// for LLaVA-NeXT.
func (c *Clip) Preprocess(img *imageprep.RGB) ([]*imageprep.Float, error) {
	if img == nil || img.W <= 0 || img.H <= 0 || len(img.Pix) != img.W*img.H*3 {
		return nil, fmt.Errorf("clip preprocess: bad image: %w", ErrArg)
	}
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	c.mu.Lock()
	defer c.mu.Unlock()
	var im *C.hp_clip_images
	code := C.hp_clip_preprocess(c.c, (*C.uint8_t)(unsafe.Pointer(&img.Pix[0])), C.int(img.W), C.int(img.H), &im, eb, errBufLen)
	if err := goErr(code, eb, "clip preprocess"); err != nil {
		return nil, err
	}
	defer C.hp_clip_images_free(im)
	n := int(C.hp_clip_images_count(im))
	out := make([]*imageprep.Float, n)
	for i := range out {
		var nx, ny C.int
		p := C.hp_clip_images_get(im, C.int(i), &nx, &ny)
		w, h := int(nx), int(ny)
		out[i] = &imageprep.Float{W: w, H: h, Pix: append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), w*h*3)...)}
	}
	return out, nil
}

// Encode runs clip_encode_float_image on a preprocessed image.
func (c *Clip) Encode(img *imageprep.Float, threads int) ([]float32, error) {
	if img == nil || len(img.Pix) == 0 || len(img.Pix) != img.W*img.H*3 {
		return nil, fmt.Errorf("clip encode: bad float image: %w", ErrArg)
	}
	out := make([]float32, c.NTokens(img.W, img.H)*c.NEmbd())
	eb := errBuf()
	defer C.free(unsafe.Pointer(eb))
	c.mu.Lock()
	defer c.mu.Unlock()
	code := C.hp_clip_encode(c.c, C.int(threads), (*C.float)(unsafe.Pointer(&img.Pix[0])), C.int(img.W), C.int(img.H),
		(*C.float)(unsafe.Pointer(&out[0])), eb, errBufLen)
	if err := goErr(code, eb, "clip encode"); err != nil {
		return nil, err
	}
	return out, nil
}
