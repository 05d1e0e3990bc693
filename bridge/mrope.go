package bridge

/*
#include <stdlib.h>
#include <string.h>
#include "llama.h"

// An embeddings batch for a model with M-RoPE (n_pos_per_embd = 4):
// llama.cpp reads an embeddings batch's positions dimension-major,
// pos[d*n_tokens + i] (time, row, column, unused), so pos holds 4 per
// token, which llama_batch_init does not allocate.
typedef struct hp_mrope_batch {
	struct llama_batch b;
	llama_seq_id seq0;
	llama_seq_id * seq_ptrs[1];
} hp_mrope_batch;

static hp_mrope_batch * hp_mrope_batch_new(int n, int n_embd) {
	hp_mrope_batch * mb = (hp_mrope_batch *) calloc(1, sizeof(hp_mrope_batch));
	if (!mb) return NULL;
	mb->b.embd = (float *) malloc(sizeof(float) * (size_t) n * (size_t) n_embd);
	mb->b.pos = (llama_pos *) malloc(sizeof(llama_pos) * (size_t) n * 4);
	mb->b.n_seq_id = (int32_t *) malloc(sizeof(int32_t) * (size_t) n);
	mb->b.seq_id = (llama_seq_id **) malloc(sizeof(llama_seq_id *) * (size_t) n);
	mb->b.logits = (int8_t *) malloc((size_t) n);
	if (!mb->b.embd || !mb->b.pos || !mb->b.n_seq_id || !mb->b.seq_id || !mb->b.logits) {
		free(mb->b.embd); free(mb->b.pos); free(mb->b.n_seq_id); free(mb->b.seq_id); free(mb->b.logits);
		free(mb);
		return NULL;
	}
	mb->seq0 = 0;
	for (int i = 0; i < n; i++) {
		mb->b.n_seq_id[i] = 1;
		mb->b.seq_id[i] = &mb->seq0;
	}
	return mb;
}

static void hp_mrope_batch_free(hp_mrope_batch * mb) {
	if (!mb) return;
	free(mb->b.embd); free(mb->b.pos); free(mb->b.n_seq_id); free(mb->b.seq_id); free(mb->b.logits);
	free(mb);
}

// hp_mrope_batch_set fills token i of a batch of n.
static void hp_mrope_batch_set(hp_mrope_batch * mb, int n, int i, int n_embd, const float * e,
                               llama_pos t, llama_pos y, llama_pos x, bool logits) {
	memcpy(mb->b.embd + (size_t) i * n_embd, e, (size_t) n_embd * sizeof(float));
	mb->b.pos[i] = t;
	mb->b.pos[n + i] = y;
	mb->b.pos[2 * n + i] = x;
	mb->b.pos[3 * n + i] = 0;
	mb->b.logits[i] = logits;
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/x448/float16"
)

// MRoPEPos is an image token's position in a model with M-RoPE (Qwen2-VL,
// Qwen2.5-VL): time, row and column.
type MRoPEPos struct{ T, Y, X int }

// MtmdImagePositions are the positions llama.cpp's mtmd gives the tokens of
// an nx x ny image (merged tokens, raster order) that starts at position
// pos0 (mtmd-helper.cpp, set_position_mrope_2d: time pos0, row pos0+y,
// column pos0+x), and the position the text after it starts at
// (mtmd_image_tokens_get_n_pos: pos0 + max(nx, ny)). A pruned image keeps
// its tokens' positions and the same next position.
func MtmdImagePositions(pos0, nx, ny int) (pos []MRoPEPos, next int) {
	pos = make([]MRoPEPos, 0, nx*ny)
	for y := range ny {
		for x := range nx {
			pos = append(pos, MRoPEPos{T: pos0, Y: pos0 + y, X: pos0 + x})
		}
	}
	return pos, pos0 + max(nx, ny)
}

// UsesMRoPE reports whether the model takes 4 positions per embedding
// (llama.cpp's M-RoPE rope types); its image embeddings must then go
// through DecodeEmbeddingsMRoPE.
func (m *Model) UsesMRoPE() bool {
	switch C.llama_model_rope_type(m.c) {
	case C.LLAMA_ROPE_TYPE_MROPE, C.LLAMA_ROPE_TYPE_IMROPE, C.LLAMA_ROPE_TYPE_VISION:
		return true
	}
	return false
}

// DecodeEmbeddingsMRoPE evaluates the rows of embd (each NEmbd wide) as
// input embeddings at the given M-RoPE positions, in batches of NBatch
// (like mtmd's helper, which sends an image's tokens in several batches at
// the same time position). Positions need not be consecutive: a pruned
// image's tokens keep those of the full image. With logitsLast the last
// row computes logits. The model must use M-RoPE (UsesMRoPE).
func (c *Context) DecodeEmbeddingsMRoPE(embd []float32, pos []MRoPEPos, logitsLast bool) error {
	if !c.model.UsesMRoPE() {
		return fmt.Errorf("decode: the model does not use M-RoPE positions: %w", ErrArg)
	}
	if len(embd) != len(pos)*c.nEmbd {
		return fmt.Errorf("decode: %d floats for %d positions of %d-wide embeddings: %w", len(embd), len(pos), c.nEmbd, ErrArg)
	}
	for i, p := range pos {
		if p.T < 0 || p.Y < 0 || p.X < 0 || max(p.T, p.Y, p.X) > math.MaxInt32 {
			return fmt.Errorf("decode: position %d is %+v: %w", i, p, ErrArg)
		}
	}
	if len(pos) == 0 {
		return nil
	}
	mb := C.hp_mrope_batch_new(C.int(c.nBatch), C.int(c.nEmbd))
	if mb == nil {
		return fmt.Errorf("decode: cannot allocate a %d-token batch: %w", c.nBatch, ErrBackend)
	}
	defer C.hp_mrope_batch_free(mb)
	n := len(pos)
	for off := 0; off < n; off += c.nBatch {
		k := min(c.nBatch, n-off)
		for i := range k {
			row := embd[(off+i)*c.nEmbd : (off+i+1)*c.nEmbd]
			p := pos[off+i]
			C.hp_mrope_batch_set(mb, C.int(k), C.int(i), C.int(c.nEmbd), (*C.float)(unsafe.Pointer(&row[0])),
				C.llama_pos(p.T), C.llama_pos(p.Y), C.llama_pos(p.X), C.bool(logitsLast && off+i == n-1))
		}
		if err := c.decode(mb.b, k); err != nil {
			return err
		}
	}
	return nil
}

// KVState is what the KV cache holds for sequence 0, as llama.cpp
// serialises it (llama_state_seq_get_data): every cell in cache order, with
// its (time) position and its keys. Reading it back shows what was
// evaluated, rather than what was meant to be: the keys are after RoPE, so
// a token placed at another row or column has other keys. For tests and
// diagnostics.
type KVState struct {
	Pos  []int
	keys []kvKeys // per layer
}

type kvKeys struct {
	typ  int32
	row  int // bytes per cell
	data []byte
}

// NLayer is the number of layers whose keys the state holds.
func (s *KVState) NLayer() int { return len(s.keys) }

// Keys returns cell i's keys at layer l as float32 (F32 or F16 caches).
func (s *KVState) Keys(l, i int) ([]float32, error) {
	if l < 0 || l >= len(s.keys) || i < 0 || i >= len(s.Pos) {
		return nil, fmt.Errorf("kv state: layer %d, cell %d out of range (%d layers, %d cells): %w", l, i, len(s.keys), len(s.Pos), ErrArg)
	}
	k := s.keys[l]
	b := k.data[i*k.row : (i+1)*k.row]
	switch k.typ {
	case C.GGML_TYPE_F32:
		out := make([]float32, len(b)/4)
		for j := range out {
			out[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		return out, nil
	case C.GGML_TYPE_F16:
		out := make([]float32, len(b)/2)
		for j := range out {
			out[j] = float16.Frombits(binary.LittleEndian.Uint16(b[2*j:])).Float32()
		}
		return out, nil
	}
	return nil, fmt.Errorf("kv state: key type %d is not f32 or f16: %w", k.typ, ErrUnsup)
}

// ReadKV reads sequence 0's cells back from the KV cache.
func (c *Context) ReadKV() (*KVState, error) {
	size := C.llama_state_seq_get_size(c.c, 0)
	if size == 0 {
		return &KVState{}, nil
	}
	buf := C.malloc(size)
	if buf == nil {
		return nil, fmt.Errorf("kv state: cannot allocate %d bytes: %w", size, ErrBackend)
	}
	defer C.free(buf)
	n := C.llama_state_seq_get_data(c.c, (*C.uint8_t)(buf), size, 0)
	return parseKVState(C.GoBytes(buf, C.int(n)))
}

// parseKVState reads llama_kv_cache::state_write's layout (one stream):
// n_stream; per stream cell_count, then per cell pos (i32), n_seq_id (u32)
// and the seq ids (i32 each); then v_trans, n_layer and per layer the key
// type (i32), row size (u64) and cell_count rows. The values follow and are
// not read.
func parseKVState(b []byte) (*KVState, error) {
	r := kvReader{b: b}
	nStream := r.u32()
	if r.err == nil && nStream != 1 {
		return nil, fmt.Errorf("kv state: %d streams, want 1: %w", nStream, ErrUnsup)
	}
	cells := int(r.u32())
	s := &KVState{}
	for range cells {
		if r.err != nil {
			break
		}
		s.Pos = append(s.Pos, int(int32(r.u32())))
		for range r.u32() {
			r.u32()
		}
	}
	if cells == 0 || r.err != nil {
		return s, r.err
	}
	r.u32() // v_trans
	nLayer := int(r.u32())
	for l := 0; l < nLayer && r.err == nil; l++ {
		typ := int32(r.u32())
		row := r.u64()
		if r.err == nil && (row == 0 || row > uint64(len(b))/uint64(cells)) {
			return nil, fmt.Errorf("kv state: layer %d key rows of %d bytes: %w", l, row, ErrFormat)
		}
		s.keys = append(s.keys, kvKeys{typ: typ, row: int(row), data: r.bytes(int(row) * cells)})
	}
	return s, r.err
}

type kvReader struct {
	b   []byte
	off int
	err error
}

func (r *kvReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = fmt.Errorf("kv state: truncated at byte %d (%d more wanted): %w", r.off, n, ErrFormat)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *kvReader) u32() uint32 {
	if p := r.bytes(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *kvReader) u64() uint64 {
	if p := r.bytes(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
