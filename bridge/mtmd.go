package bridge

/*
#include <stdlib.h>
#include "mtmd.h"
#include "bridge.h"
#include "mtmd-helper.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Mtmd is llama.cpp's own multimodal path (tools/mtmd): the baseline a
// llama.cpp user has today, used by tests and benchmarks for comparison.
type Mtmd struct {
	// mu holds an image chunk's encode and decode together: mtmd keeps the
	// last encode's output in one buffer per context.
	mu    sync.Mutex
	c     *C.mtmd_context
	model *Model
}

// MtmdMarker is the text marker mtmd replaces with an image.
func MtmdMarker() string { return C.GoString(C.mtmd_default_marker()) }

// MtmdParams configures OpenMtmd; the zero value is llama.cpp's default
// (4 threads, the CPU). Flash attention is not among them: the pinned mtmd
// ignores mtmd_context_params.flash_attn_type and always runs clip on
// "auto" (on where the device supports it).
type MtmdParams struct {
	Threads int  // encoder threads; <= 0 keeps mtmd's default
	UseGPU  bool // run clip on a GPU ggml has registered
}

// OpenMtmd loads an mmproj for model m with llama.cpp's mtmd.
func OpenMtmd(mmproj string, m *Model, mp MtmdParams) (*Mtmd, error) {
	Init()
	if err := checkGGUF(mmproj, "mmproj"); err != nil {
		return nil, err
	}
	if err := checkMtmdHeader(mmproj); err != nil {
		return nil, err
	}
	p := C.mtmd_context_params_default()
	p.use_gpu = C.bool(mp.UseGPU)
	p.print_timings = false
	if mp.Threads > 0 {
		p.n_threads = C.int(mp.Threads)
	}
	p.warmup = true
	cpath := C.CString(mmproj)
	defer C.free(unsafe.Pointer(cpath))
	c, errs := captureLoadErrors(func() *C.mtmd_context { return C.mtmd_init_from_file(cpath, m.c, p) })
	if c == nil {
		return nil, fmt.Errorf("mtmd: llama.cpp could not load %s: %s: %w", mmproj, loadReason(errs), ErrFormat)
	}
	logLoadErrors(errs)
	x := &Mtmd{c: c, model: m}
	runtime.SetFinalizer(x, func(x *Mtmd) { x.Close() })
	return x, nil
}

// Close frees the mtmd context.
func (x *Mtmd) Close() {
	if x.c != nil {
		C.hp_mtmd_free(x.c)
		x.c = nil
	}
}

// MtmdChunks is a tokenized prompt of text and image chunks.
type MtmdChunks struct {
	c *C.mtmd_input_chunks
}

// Free releases the chunks.
func (ch *MtmdChunks) Free() {
	if ch.c != nil {
		C.mtmd_input_chunks_free(ch.c)
		ch.c = nil
	}
}

// Len is the number of chunks.
func (ch *MtmdChunks) Len() int { return int(C.mtmd_input_chunks_size(ch.c)) }

// IsImage reports whether chunk i is an image.
func (ch *MtmdChunks) IsImage(i int) bool {
	return C.mtmd_input_chunk_get_type(C.mtmd_input_chunks_get(ch.c, C.size_t(i))) == C.MTMD_INPUT_CHUNK_TYPE_IMAGE
}

// NTokens is the number of tokens (text) or embeddings (image) of chunk i.
func (ch *MtmdChunks) NTokens(i int) int {
	return int(C.mtmd_input_chunk_get_n_tokens(C.mtmd_input_chunks_get(ch.c, C.size_t(i))))
}

// Tokens returns a text chunk's tokens.
func (ch *MtmdChunks) Tokens(i int) []int32 {
	var n C.size_t
	p := C.mtmd_input_chunk_get_tokens_text(C.mtmd_input_chunks_get(ch.c, C.size_t(i)), &n)
	if p == nil || n == 0 {
		return nil
	}
	out := make([]int32, int(n))
	copy(out, unsafe.Slice((*int32)(unsafe.Pointer(p)), int(n)))
	return out
}

// Tokenize splits prompt at each MtmdMarker and tokenizes text and images.
func (x *Mtmd) Tokenize(prompt string, images []*imageprep.RGB, addSpecial bool) (*MtmdChunks, error) {
	ctext := C.CString(prompt)
	defer C.free(unsafe.Pointer(ctext))
	in := C.mtmd_input_text{text: ctext, add_special: C.bool(addSpecial), parse_special: true}
	bms := make([]*C.mtmd_bitmap, len(images))
	defer func() {
		for _, b := range bms {
			if b != nil {
				C.mtmd_bitmap_free(b)
			}
		}
	}()
	for i, im := range images {
		if im == nil {
			return nil, fmt.Errorf("mtmd: image %d is nil: %w", i, ErrArg)
		}
		if im.W <= 0 || im.H <= 0 || len(im.Pix) != im.W*im.H*3 {
			return nil, fmt.Errorf("mtmd: image %d is %dx%d with %d bytes: %w", i, im.W, im.H, len(im.Pix), ErrArg)
		}
		bms[i] = C.mtmd_bitmap_init(C.uint32_t(im.W), C.uint32_t(im.H), (*C.uchar)(unsafe.Pointer(&im.Pix[0])))
		// The id tells which image a chunk came from (ImageIndex): sliced
		// families give several chunks per image.
		id := C.CString(strconv.Itoa(i))
		C.mtmd_bitmap_set_id(bms[i], id)
		C.free(unsafe.Pointer(id))
	}
	ch := &MtmdChunks{c: C.mtmd_input_chunks_init()}
	var bp **C.mtmd_bitmap
	if len(bms) > 0 {
		// The bitmap pointers live in C memory: a Go slice of C pointers may
		// be passed, it holds no Go pointers.
		bp = (**C.mtmd_bitmap)(unsafe.Pointer(&bms[0]))
	}
	if rc := C.mtmd_tokenize(x.c, ch.c, &in, bp, C.size_t(len(bms))); rc != 0 {
		ch.Free()
		switch rc {
		case 1:
			return nil, fmt.Errorf("mtmd: prompt has a different number of %s markers than the %d images: %w", MtmdMarker(), len(images), ErrArg)
		default:
			return nil, fmt.Errorf("mtmd: tokenize failed (code %d): %w", int(rc), ErrBackend)
		}
	}
	return ch, nil
}

// MtmdTimings splits an evaluation into encoder and LM time.
type MtmdTimings struct {
	Encode, Prefill time.Duration
	ImageTokens     int
	TextTokens      int
}

// Eval evaluates all chunks into ctx from position nPast, as
// mtmd_helper_eval_chunks does, timing the image encoder separately.
// It returns the next free position.
func (x *Mtmd) Eval(ctx *Context, ch *MtmdChunks, nPast int, logitsLast bool) (int, MtmdTimings, error) {
	var t MtmdTimings
	n := ch.Len()
	for i := 0; i < n; i++ {
		next, ti, err := x.EvalChunk(ctx, ch, i, nPast, logitsLast && i == n-1)
		t.Encode += ti.Encode
		t.Prefill += ti.Prefill
		t.ImageTokens += ti.ImageTokens
		t.TextTokens += ti.TextTokens
		if err != nil {
			return nPast, t, err
		}
		nPast = next
	}
	return nPast, t, nil
}

// EvalChunk evaluates chunk i of ch into ctx at position nPast, as
// mtmd_helper_eval_chunk_single does (an image chunk is encoded, then
// decoded, with non-causal attention for the families that want it), and
// returns the next free position: NPos(i) after nPast. With logitsLast the
// chunk's last token computes logits, which only a text chunk can do.
func (x *Mtmd) EvalChunk(ctx *Context, ch *MtmdChunks, i, nPast int, logitsLast bool) (int, MtmdTimings, error) {
	var t MtmdTimings
	if i < 0 || i >= ch.Len() {
		return nPast, t, fmt.Errorf("mtmd: chunk %d of %d: %w", i, ch.Len(), ErrArg)
	}
	chunk := C.mtmd_input_chunks_get(ch.c, C.size_t(i))
	// The helpers add to *new_n_past rather than set it.
	next := C.llama_pos(nPast)
	k := ch.NTokens(i)
	if err := ctx.checkRoom(nPast, k); err != nil {
		return nPast, t, fmt.Errorf("mtmd: %w", err)
	}
	if !ch.IsImage(i) {
		t0 := time.Now()
		if rc := C.mtmd_helper_eval_chunk_single(x.c, ctx.c, chunk, C.llama_pos(nPast), 0,
			C.int32_t(ctx.NBatch()), C.bool(logitsLast), &next); rc != 0 {
			return nPast, t, fmt.Errorf("mtmd: text decode failed (code %d): %w", int(rc), ErrBackend)
		}
		t.Prefill = time.Since(t0)
		t.TextTokens = k
		return int(next), t, nil
	}
	if logitsLast {
		return nPast, t, fmt.Errorf("mtmd: chunk %d is an image, which computes no logits: %w", i, ErrArg)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	t0 := time.Now()
	if rc := C.mtmd_encode_chunk(x.c, chunk); rc != 0 {
		return nPast, t, fmt.Errorf("mtmd: encode failed (code %d): %w", int(rc), ErrBackend)
	}
	t1 := time.Now()
	embd := C.mtmd_get_output_embd(x.c)
	if rc := C.mtmd_helper_decode_image_chunk(x.c, ctx.c, chunk, embd, C.llama_pos(nPast), 0,
		C.int32_t(ctx.NBatch()), &next); rc != 0 {
		return nPast, t, fmt.Errorf("mtmd: image decode failed (code %d): %w", int(rc), ErrBackend)
	}
	t.Encode = t1.Sub(t0)
	t.Prefill = time.Since(t1)
	t.ImageTokens = k
	return int(next), t, nil
}

// NPos is the number of positions chunk i takes: its tokens, except for an
// M-RoPE image (Qwen2-VL), which takes max(width, height) of its grid.
func (ch *MtmdChunks) NPos(i int) int {
	return int(C.mtmd_input_chunk_get_n_pos(C.mtmd_input_chunks_get(ch.c, C.size_t(i))))
}

// ImageIndex is the index, in Tokenize's images, of the image chunk i came
// from (several chunks for the families that slice an image); -1 for text.
func (ch *MtmdChunks) ImageIndex(i int) int {
	id := C.mtmd_input_chunk_get_id(C.mtmd_input_chunks_get(ch.c, C.size_t(i)))
	if id == nil {
		return -1
	}
	n, err := strconv.Atoi(C.GoString(id))
	if err != nil {
		return -1
	}
	return n
}

// SupportsVision reports whether the mmproj has a vision encoder (an
// audio-only one loads too).
func (x *Mtmd) SupportsVision() bool { return bool(C.mtmd_support_vision(x.c)) }

// EncodeImage runs only mtmd's image encoder on one image and returns its
// embeddings (n tokens of the LM's width).
func (x *Mtmd) EncodeImage(im *imageprep.RGB) ([]float32, int, error) {
	ch, err := x.Tokenize(MtmdMarker(), []*imageprep.RGB{im}, false)
	if err != nil {
		return nil, 0, err
	}
	defer ch.Free()
	for i := 0; i < ch.Len(); i++ {
		if !ch.IsImage(i) {
			continue
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		if rc := C.mtmd_encode_chunk(x.c, C.mtmd_input_chunks_get(ch.c, C.size_t(i))); rc != 0 {
			return nil, 0, fmt.Errorf("mtmd: encode failed (code %d): %w", int(rc), ErrBackend)
		}
		k := ch.NTokens(i)
		w := x.model.NEmbd()
		out := make([]float32, k*w)
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(C.mtmd_get_output_embd(x.c))), k*w))
		return out, k, nil
	}
	return nil, 0, fmt.Errorf("mtmd: no image chunk: %w", ErrBackend)
}
