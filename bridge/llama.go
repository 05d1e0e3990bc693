package bridge

/*
#include <stdlib.h>
#include <string.h>
#include "llama.h"
#include "bridge.h"

// Small helpers so Go never indexes C arrays inside a llama_batch by hand.
static void hp_batch_set_token(struct llama_batch * b, int i, llama_token tok, llama_pos pos, bool logits) {
	b->token[i] = tok;
	b->pos[i] = pos;
	b->n_seq_id[i] = 1;
	b->seq_id[i][0] = 0;
	b->logits[i] = logits;
}
static void hp_batch_set_embd(struct llama_batch * b, int i, int n_embd, const float * e, llama_pos pos, bool logits) {
	memcpy(b->embd + (size_t) i * n_embd, e, (size_t) n_embd * sizeof(float));
	b->pos[i] = pos;
	b->n_seq_id[i] = 1;
	b->seq_id[i][0] = 0;
	b->logits[i] = logits;
}
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/hiprune/hiprune-go/internal/fsutil"
	"github.com/hiprune/hiprune-go/internal/gguf"
)

// ModelParams configure LoadModel.
type ModelParams struct {
	GPULayers int  // layers offloaded to a GPU device (-1 all); ignored without one
	NoMmap    bool // read the file instead of mapping it
	VocabOnly bool
	// NoRepack keeps the weights in ggml's plain CPU buffer instead of its
	// extra buffer types (repacked layouts, AMX): llama.cpp's --no-repack.
	NoRepack bool
}

// Model is a llama.cpp language model.
type Model struct {
	c     *C.struct_llama_model
	vocab *C.struct_llama_vocab
	path  string
}

// checkGGUF names the common ways a path is not a usable model, so that
// llama.cpp never sees them.
func checkGGUF(path, what string) error {
	// A FIFO or a device would block the open or the read forever.
	if err := fsutil.CheckInput(path); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || !bytes.Equal(magic[:], []byte("GGUF")) {
		return fmt.Errorf("%s: %s is not a GGUF file: %w", what, path, ErrFormat)
	}
	return nil
}

// checkModelFile reads the GGUF header in Go first: a truncated file, or
// hyper-parameters or a vocabulary that make llama.cpp abort the whole
// process or compute NaN (lmcheck.go), are refused here with a message
// naming them.
func checkModelFile(path string) error {
	if err := checkGGUF(path, "model"); err != nil {
		return err
	}
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("model: %s: %v: %w", path, err, ErrFormat)
	}
	defer f.Close()
	return checkLMHparams(path, f)
}

// LoadModel loads a GGUF language model.
func LoadModel(path string, p ModelParams) (*Model, error) {
	Init()
	if err := checkModelFile(path); err != nil {
		return nil, err
	}
	if err := checkModelTensorTypes(path); err != nil {
		return nil, err
	}
	mp := C.llama_model_default_params()
	mp.n_gpu_layers = C.int32_t(p.GPULayers)
	mp.use_mmap = C.bool(!p.NoMmap)
	mp.vocab_only = C.bool(p.VocabOnly)
	mp.use_extra_bufts = C.bool(!p.NoRepack)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	c, errs := captureLoadErrors(func() *C.struct_llama_model { return C.llama_model_load_from_file(cpath, mp) })
	if c == nil {
		return nil, fmt.Errorf("model: llama.cpp could not load %s: %s: %w", path, loadReason(errs), ErrFormat)
	}
	logLoadErrors(errs)
	m := &Model{c: c, vocab: C.llama_model_get_vocab(c), path: path}
	runtime.SetFinalizer(m, func(m *Model) { m.Close() })
	return m, nil
}

// Close frees the model. Contexts made from it must be closed first.
func (m *Model) Close() {
	if m.c != nil {
		C.llama_model_free(m.c)
		m.c = nil
	}
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// NEmbd is the width of the model's input embeddings.
func (m *Model) NEmbd() int { return int(C.llama_model_n_embd_inp(m.c)) }

// NCtxTrain is the training context length.
func (m *Model) NCtxTrain() int { return int(C.llama_model_n_ctx_train(m.c)) }

// NVocab is the vocabulary size.
func (m *Model) NVocab() int { return int(C.llama_vocab_n_tokens(m.vocab)) }

// NLayer is the number of transformer layers.
func (m *Model) NLayer() int { return int(C.llama_model_n_layer(m.c)) }

// Size is the size of the model's tensors in bytes.
func (m *Model) Size() uint64 { return uint64(C.llama_model_size(m.c)) }

// NParams is the number of parameters.
func (m *Model) NParams() uint64 { return uint64(C.llama_model_n_params(m.c)) }

// Desc is llama.cpp's one-line description ("llama 7B Q4_0").
func (m *Model) Desc() string {
	buf := make([]byte, 256)
	n := C.llama_model_desc(m.c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return ""
	}
	return string(buf[:min(int(n), len(buf)-1)])
}

// Meta returns a GGUF metadata string value, or "" when absent.
func (m *Model) Meta(key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	buf := make([]byte, 1<<16)
	n := C.llama_model_meta_val_str(m.c, ck, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return ""
	}
	return string(buf[:min(int(n), len(buf)-1)])
}

// ChatTemplate is the model's default chat template, or "" when it has none.
func (m *Model) ChatTemplate() string {
	t := C.llama_model_chat_template(m.c, nil)
	if t == nil {
		return ""
	}
	return C.GoString(t)
}

// BOS is the beginning-of-sequence token; AddBOS tells whether the
// tokenizer adds it.
func (m *Model) BOS() int32   { return int32(C.llama_vocab_bos(m.vocab)) }
func (m *Model) AddBOS() bool { return bool(C.llama_vocab_get_add_bos(m.vocab)) }

// IsEOG reports end-of-generation tokens (EOS, EOT, ...).
func (m *Model) IsEOG(tok int32) bool { return bool(C.llama_vocab_is_eog(m.vocab, C.llama_token(tok))) }

// Tokenize converts text to tokens. addSpecial adds BOS (if the model
// wants it); parseSpecial turns special-token text into those tokens.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if text == "" && !addSpecial {
		return nil, nil
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	n := len(text) + 8
	for {
		toks := make([]int32, n)
		got := C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)), (*C.llama_token)(unsafe.Pointer(&toks[0])),
			C.int32_t(n), C.bool(addSpecial), C.bool(parseSpecial))
		if got >= 0 {
			return toks[:got], nil
		}
		if int(-got) <= n {
			return nil, fmt.Errorf("tokenize: llama.cpp failed on %d bytes of text", len(text))
		}
		n = int(-got)
	}
}

// TokenPiece is the text of one token (special tokens rendered as empty).
func (m *Model) TokenPiece(tok int32) []byte { return m.piece(tok, false) }

// TokenText is the text of one token with special tokens spelled out
// ("</s>"), as a chat template writes them.
func (m *Model) TokenText(tok int32) string { return string(m.piece(tok, true)) }

// EOS is the end-of-sequence token.
func (m *Model) EOS() int32 { return int32(C.llama_vocab_eos(m.vocab)) }

func (m *Model) piece(tok int32, special bool) []byte {
	buf := make([]byte, 64)
	for {
		n := C.llama_token_to_piece(m.vocab, C.llama_token(tok), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), 0, C.bool(special))
		if n >= 0 {
			return buf[:n]
		}
		buf = make([]byte, -n)
	}
}

// ChatMessage is one turn for ApplyChatTemplate.
type ChatMessage struct {
	Role, Content string
}

// ErrNoTemplate means llama.cpp does not recognise the template.
var ErrNoTemplate = errors.New("chat template not supported by llama.cpp")

// ApplyChatTemplate formats msgs with tmpl (a template text as stored in
// GGUF, or a built-in name such as "vicuna"), as llama.cpp's
// llama_chat_apply_template does. It recognises the common templates by
// their text and does not run Jinja.
func ApplyChatTemplate(tmpl string, msgs []ChatMessage, addAssistant bool) (string, error) {
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))
	cm := (*C.struct_llama_chat_message)(C.calloc(C.size_t(max(len(msgs), 1)), C.size_t(unsafe.Sizeof(C.struct_llama_chat_message{}))))
	defer C.free(unsafe.Pointer(cm))
	cms := unsafe.Slice(cm, max(len(msgs), 1))
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	total := 0
	for i, msg := range msgs {
		r, c := C.CString(msg.Role), C.CString(msg.Content)
		frees = append(frees, unsafe.Pointer(r), unsafe.Pointer(c))
		cms[i].role, cms[i].content = r, c
		total += len(msg.Role) + len(msg.Content)
	}
	n := 2*total + 256
	for {
		buf := make([]byte, n)
		got := C.llama_chat_apply_template(ctmpl, cm, C.size_t(len(msgs)), C.bool(addAssistant),
			(*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(n))
		if got < 0 {
			return "", ErrNoTemplate
		}
		if int(got) <= n {
			return string(buf[:got]), nil
		}
		n = int(got)
	}
}

// FlashAttn is llama.cpp's flash-attention switch for the LM context.
type FlashAttn int

const (
	FlashAttnAuto FlashAttn = iota
	FlashAttnOn
	FlashAttnOff
)

// flashAttnNames are the FlashAttn values as llama.cpp's -fa spells them.
var flashAttnNames = [...]string{FlashAttnAuto: "auto", FlashAttnOn: "on", FlashAttnOff: "off"}

func (f FlashAttn) String() string {
	if f.Valid() {
		return flashAttnNames[f]
	}
	return fmt.Sprintf("FlashAttn(%d)", int(f))
}

// ParseFlashAttn reads a FlashAttn by name: "auto", "on" or "off".
func ParseFlashAttn(s string) (FlashAttn, bool) {
	i := slices.Index(flashAttnNames[:], s)
	return FlashAttn(max(i, 0)), i >= 0
}

// Valid reports whether f is one of the three settings.
func (f FlashAttn) Valid() bool { return f >= 0 && int(f) < len(flashAttnNames) }

// ContextParams configure NewContext.
type ContextParams struct {
	NCtx      int // context length; 0 = 4096 capped at the training length
	NBatch    int // logical batch; 0 = 512
	NUBatch   int // physical batch; 0 = NBatch
	Threads   int // 0 = 4
	FlashAttn FlashAttn
}

// Context is a llama.cpp inference context holding one sequence (seq 0).
// Not safe for concurrent use.
type Context struct {
	c      *C.struct_llama_context
	model  *Model
	nEmbd  int
	nBatch int
	tok    C.struct_llama_batch
	emb    C.struct_llama_batch
	mu     sync.Mutex
}

// NewContext creates a context over m.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	cp := C.llama_context_default_params()
	if p.NCtx <= 0 {
		p.NCtx = min(4096, max(m.NCtxTrain(), 512))
	}
	if p.NBatch <= 0 {
		p.NBatch = 512
	}
	if p.NUBatch <= 0 || p.NUBatch > p.NBatch {
		p.NUBatch = p.NBatch
	}
	if p.Threads <= 0 {
		p.Threads = 4
	}
	cp.n_ctx = C.uint32_t(p.NCtx)
	cp.n_batch = C.uint32_t(p.NBatch)
	cp.n_ubatch = C.uint32_t(p.NUBatch)
	cp.n_seq_max = 1
	cp.n_threads = C.int32_t(p.Threads)
	cp.n_threads_batch = C.int32_t(p.Threads)
	cp.no_perf = true
	switch p.FlashAttn {
	case FlashAttnOn:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
	case FlashAttnOff:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	default:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
	}
	c := C.llama_init_from_model(m.c, cp)
	if c == nil {
		return nil, fmt.Errorf("context: llama.cpp could not create a %d-token context (out of memory?): %w", p.NCtx, ErrBackend)
	}
	ctx := &Context{c: c, model: m, nEmbd: m.NEmbd(), nBatch: int(C.llama_n_batch(c))}
	ctx.tok = C.llama_batch_init(C.int32_t(ctx.nBatch), 0, 1)
	ctx.emb = C.llama_batch_init(C.int32_t(ctx.nBatch), C.int32_t(ctx.nEmbd), 1)
	runtime.SetFinalizer(ctx, func(c *Context) { c.Close() })
	return ctx, nil
}

// Close frees the context.
func (c *Context) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		C.llama_batch_free(c.tok)
		C.llama_batch_free(c.emb)
		C.hp_llama_free(c.c)
		c.c = nil
	}
}

// Model is the model the context runs.
func (c *Context) Model() *Model { return c.model }

// NCtx is the context length in tokens.
func (c *Context) NCtx() int { return int(C.llama_n_ctx(c.c)) }

// NBatch is the largest batch one decode call takes.
func (c *Context) NBatch() int { return c.nBatch }

// SetThreads changes the thread count for later decodes.
func (c *Context) SetThreads(n int) { C.llama_set_n_threads(c.c, C.int32_t(n), C.int32_t(n)) }

// ErrContextFull means the tokens do not fit in the context.
var ErrContextFull = errors.New("context is full")

func (c *Context) decode(b C.struct_llama_batch, n int) error {
	b.n_tokens = C.int32_t(n)
	switch rc := C.llama_decode(c.c, b); {
	case rc == 0:
		return nil
	case rc == 1:
		return fmt.Errorf("decode: no KV-cache slot for %d tokens: %w", n, ErrContextFull)
	case rc == 2:
		return fmt.Errorf("decode: aborted: %w", ErrBackend)
	default:
		return fmt.Errorf("decode: llama_decode returned %d: %w", int(rc), ErrBackend)
	}
}

// DecodeTokens evaluates tokens at positions pos0.. in batches of NBatch;
// with logitsLast the last token's logits are computed.
func (c *Context) DecodeTokens(toks []int32, pos0 int, logitsLast bool) error {
	if err := c.checkRoom(pos0, len(toks)); err != nil {
		return err
	}
	for off := 0; off < len(toks); off += c.nBatch {
		n := min(c.nBatch, len(toks)-off)
		for i := 0; i < n; i++ {
			last := logitsLast && off+i == len(toks)-1
			C.hp_batch_set_token(&c.tok, C.int(i), C.llama_token(toks[off+i]), C.llama_pos(pos0+off+i), C.bool(last))
		}
		if err := c.decode(c.tok, n); err != nil {
			return err
		}
	}
	return nil
}

// DecodeEmbeddings evaluates n rows of embd (each NEmbd wide) as input
// embeddings at consecutive positions pos0...
func (c *Context) DecodeEmbeddings(embd []float32, pos0 int, logitsLast bool) error {
	if len(embd)%c.nEmbd != 0 {
		return fmt.Errorf("decode: %d floats is not a whole number of %d-wide embeddings: %w", len(embd), c.nEmbd, ErrArg)
	}
	n := len(embd) / c.nEmbd
	// llama.cpp would read 4 positions per row of an M-RoPE model's
	// embeddings batch, past the one per row this batch holds.
	if c.model.UsesMRoPE() {
		return fmt.Errorf("decode: the model uses M-RoPE: its embeddings take DecodeEmbeddingsMRoPE: %w", ErrArg)
	}
	if err := c.checkRoom(pos0, n); err != nil {
		return err
	}
	for off := 0; off < n; off += c.nBatch {
		k := min(c.nBatch, n-off)
		for i := 0; i < k; i++ {
			row := embd[(off+i)*c.nEmbd : (off+i+1)*c.nEmbd]
			last := logitsLast && off+i == n-1
			C.hp_batch_set_embd(&c.emb, C.int(i), C.int(c.nEmbd), (*C.float)(unsafe.Pointer(&row[0])),
				C.llama_pos(pos0+off+i), C.bool(last))
		}
		if err := c.decode(c.emb, k); err != nil {
			return err
		}
	}
	return nil
}

func (c *Context) checkRoom(pos0, n int) error {
	if pos0+n > c.NCtx() {
		return fmt.Errorf("decode: %d tokens at position %d exceed the %d-token context: %w", n, pos0, c.NCtx(), ErrContextFull)
	}
	return nil
}

// Logits returns a copy of the logits of the last token that requested them.
func (c *Context) Logits() []float32 {
	p := C.llama_get_logits_ith(c.c, -1)
	if p == nil {
		return nil
	}
	out := make([]float32, c.model.NVocab())
	copy(out, unsafe.Slice((*float32)(unsafe.Pointer(p)), len(out)))
	return out
}

// KVCells is the number of KV-cache cells sequence 0 occupies.
func (c *Context) KVCells() int {
	mem := C.llama_get_memory(c.c)
	lo, hi := C.llama_memory_seq_pos_min(mem, 0), C.llama_memory_seq_pos_max(mem, 0)
	if hi < 0 {
		return 0
	}
	return int(hi-lo) + 1
}

// KVBytesPerCell is the KV-cache memory one token takes, from the model's
// shape and the cache type (F16).
func (c *Context) KVBytesPerCell() int64 {
	nLayer := int64(C.llama_model_n_layer(c.model.c))
	nHead := int64(C.llama_model_n_head(c.model.c))
	nHeadKV := int64(C.llama_model_n_head_kv(c.model.c))
	nEmbd := int64(C.llama_model_n_embd(c.model.c))
	if nHead == 0 {
		return 0
	}
	// K and V, each n_embd/n_head * n_head_kv wide, two bytes a value.
	return 2 * nLayer * (nEmbd / nHead * nHeadKV) * 2
}

// ClearKV empties the KV cache.
func (c *Context) ClearKV() { C.llama_memory_clear(C.llama_get_memory(c.c), true) }

// TrimKV drops positions >= pos from the cache.
func (c *Context) TrimKV(pos int) bool {
	return bool(C.llama_memory_seq_rm(C.llama_get_memory(c.c), 0, C.llama_pos(pos), -1))
}

// SamplerParams are llama.cpp's usual sampling controls.
type SamplerParams struct {
	Temp          float32 // <= 0: greedy
	TopK          int     // <= 0: off
	TopP          float32 // >= 1: off
	MinP          float32 // <= 0: off
	RepeatPenalty float32 // 1: off
	RepeatLastN   int
	Seed          uint32
}

// Sampler is a llama.cpp sampler chain.
type Sampler struct {
	c *C.struct_llama_sampler
}

// NewSampler builds the chain llama.cpp's CLI uses: penalties, top-k,
// top-p, min-p, temperature, then a seeded draw (or greedy at temp 0).
func NewSampler(p SamplerParams) *Sampler {
	sp := C.llama_sampler_chain_default_params()
	sp.no_perf = true
	ch := C.llama_sampler_chain_init(sp)
	if p.RepeatPenalty > 0 && p.RepeatPenalty != 1 {
		C.llama_sampler_chain_add(ch, C.llama_sampler_init_penalties(C.int32_t(p.RepeatLastN), C.float(p.RepeatPenalty), 0, 0))
	}
	if p.Temp <= 0 {
		C.llama_sampler_chain_add(ch, C.llama_sampler_init_greedy())
	} else {
		if p.TopK > 0 {
			C.llama_sampler_chain_add(ch, C.llama_sampler_init_top_k(C.int32_t(p.TopK)))
		}
		if p.TopP > 0 && p.TopP < 1 {
			C.llama_sampler_chain_add(ch, C.llama_sampler_init_top_p(C.float(p.TopP), 1))
		}
		if p.MinP > 0 {
			C.llama_sampler_chain_add(ch, C.llama_sampler_init_min_p(C.float(p.MinP), 1))
		}
		C.llama_sampler_chain_add(ch, C.llama_sampler_init_temp(C.float(p.Temp)))
		C.llama_sampler_chain_add(ch, C.llama_sampler_init_dist(C.uint32_t(p.Seed)))
	}
	s := &Sampler{c: ch}
	runtime.SetFinalizer(s, func(s *Sampler) { s.Close() })
	return s
}

// Sample picks the next token from the context's last logits and accepts it.
func (s *Sampler) Sample(c *Context) int32 {
	return int32(C.llama_sampler_sample(s.c, c.c, -1))
}

// Accept records a token the sampler did not pick (prompt history for the
// repetition penalty).
func (s *Sampler) Accept(tok int32) { C.llama_sampler_accept(s.c, C.llama_token(tok)) }

// Reset clears the sampler's history.
func (s *Sampler) Reset() { C.llama_sampler_reset(s.c) }

// Close frees the chain.
func (s *Sampler) Close() {
	if s.c != nil {
		C.llama_sampler_free(s.c)
		s.c = nil
	}
}
