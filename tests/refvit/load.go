package refvit

import (
	"fmt"
	"strings"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// loader reads an mmproj's hyper-parameters and tensors (as float64) for
// the reference models, collecting every missing or unreadable tensor so
// that one error names them all.
type loader struct {
	f       *gguf.File
	tensors map[string]gguf.TensorInfo
	errs    []string
}

func newLoader(f *gguf.File) *loader {
	l := &loader{f: f, tensors: map[string]gguf.TensorInfo{}}
	for _, t := range f.Tensors {
		l.tensors[t.Name] = t
	}
	return l
}

// HParams are the tower hyper-parameters CLIP and SigLIP mmprojs share.
type HParams struct {
	ImageSize, Patch, E, H, FF, NBlock int
	Eps                                float64
	Act                                string // gelu, gelu_quick, silu
}

// hparams reads them (0 for a missing dimension; the caller checks).
func (l *loader) hparams() HParams {
	return HParams{
		ImageSize: l.u32("clip.vision.image_size", 0),
		Patch:     l.u32("clip.vision.patch_size", 0),
		E:         l.u32("clip.vision.embedding_length", 0),
		H:         l.u32("clip.vision.attention.head_count", 0),
		FF:        l.u32("clip.vision.feed_forward_length", 0),
		NBlock:    l.u32("clip.vision.block_count", 0),
		Eps:       l.eps(),
		Act:       l.act(),
	}
}

// u32 is key's value, def when the key is absent.
func (l *loader) u32(key string, def int) int {
	kv, ok := l.f.Get(key)
	if !ok {
		return def
	}
	v, _ := kv.Value.(uint32)
	return int(v)
}

func (l *loader) flag(key string) bool {
	kv, _ := l.f.Get(key)
	v, _ := kv.Value.(bool)
	return v
}

// eps is clip.vision.attention.layer_norm_epsilon.
func (l *loader) eps() float64 {
	kv, _ := l.f.Get("clip.vision.attention.layer_norm_epsilon")
	v, _ := kv.Value.(float32)
	return float64(v)
}

// act is the MLP activation as clip.cpp picks it: gelu, silu, else quick
// GELU.
func (l *loader) act() string {
	switch {
	case l.flag("clip.use_gelu"):
		return "gelu"
	case l.flag("clip.use_silu"):
		return "silu"
	}
	return "gelu_quick"
}

// f16 says the tensor is stored in F16.
func (l *loader) f16(name string) bool { return l.tensors[name].Type == gguf.TypeF16 }

// get reads a tensor; nil when it is absent (noted if required).
func (l *loader) get(name string, required bool) []float64 {
	if _, ok := l.tensors[name]; !ok {
		if required {
			l.errs = append(l.errs, "missing tensor "+name)
		}
		return nil
	}
	v, err := l.f.ReadTensorFloat32(name)
	if err != nil {
		l.errs = append(l.errs, fmt.Sprintf("tensor %s: %v", name, err))
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// attnBlock reads block il's attention and norms (the MLP is the caller's:
// its tensor names differ by family).
func (l *loader) attnBlock(il int) block {
	n := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", il, s) }
	return block{
		qw: l.get(n("attn_q.weight"), true), qb: l.get(n("attn_q.bias"), false),
		kw: l.get(n("attn_k.weight"), true), kb: l.get(n("attn_k.bias"), false),
		vw: l.get(n("attn_v.weight"), true), vb: l.get(n("attn_v.bias"), false),
		ow: l.get(n("attn_out.weight"), true), ob: l.get(n("attn_out.bias"), false),
		ln1w: l.get(n("ln1.weight"), false), ln1b: l.get(n("ln1.bias"), false),
		ln2w: l.get(n("ln2.weight"), false), ln2b: l.get(n("ln2.bias"), false),
	}
}

// clipMLP reads block il's fc1 and fc2 by shape: fc1 (n_embd -> n_ff) is
// the tensor whose rows are e long, stored as ffn_down in older
// conversions.
func (l *loader) clipMLP(b *block, il, e int) {
	n := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", il, s) }
	up, down := "ffn_up", "ffn_down"
	if t, ok := l.tensors[n("ffn_up.weight")]; ok && int(t.Ne[0]) != e {
		up, down = down, up
	}
	b.upw, b.upb = l.get(n(up+".weight"), true), l.get(n(up+".bias"), false)
	b.downw, b.downb = l.get(n(down+".weight"), true), l.get(n(down+".bias"), false)
}

// err names everything get could not read, prefixed by prefix.
func (l *loader) err(prefix string) error {
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s%s", prefix, strings.Join(l.errs, "; "))
}
