// Package hostile generates hostile inputs for chat: GGUF files corrupted
// at every header field, truncated at many offsets or carrying values the
// loaders must refuse, malformed images of every supported kind and files of
// unsupported kinds. Its test runs each case through the built chat binary
// and checks that it fails cleanly: exit status 1 or 2, one "chat:" line
// naming the problem, nothing on stdout, no crash or hang, inputs unchanged.
package hostile

import (
	"fmt"
	"math"
	"sort"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// Role is which input of chat a case corrupts.
type Role string

// The inputs a case may replace.
const (
	RoleLM     Role = "lm"
	RoleMMProj Role = "mmproj"
	RoleImage  Role = "image"
)

// Case is one hostile run of chat: the base inputs with one of them
// replaced (Data), or a special path (Special).
type Case struct {
	Name  string
	Group string // stratum for sampling the short corpus
	Role  Role
	Data  func() []byte // the replaced input's content
	// Special replaces the input with something that is not a plain
	// file: "fifo", "dir", "missing", "swap" (the other GGUF file) or
	// "save-mask-over-image" (--save-mask names the input image).
	Special string
	Want    string // regexp the chat error line must match
	Owner   string // the fix a failure waits for, when it is not this package's
}

// Owners of the kinds other fixes cover (issue 16), named in failures.
const (
	OwnerLMHparams = "issue 16 item 1 (LM hyper-parameters, bridge/lmcheck.go)"
	OwnerHangs     = "issue 16 item 2 (non-regular files)"
	OwnerLostData  = "issue 16 item 3 (outputs never overwrite inputs)"
)

// Bases are the valid files the corpus starts from.
type Bases struct {
	LM, MMProj []byte
	Images     map[string][]byte // png, jpeg, gif, webp
}

// Corpus builds every case from the bases. full=false keeps a sample of
// about perGroup cases per (input, field kind) plus every value, tensor,
// image and special case.
func Corpus(b Bases, full bool, perGroup int) ([]Case, error) {
	var cases []Case
	for _, f := range []struct {
		role Role
		data []byte
	}{{RoleLM, b.LM}, {RoleMMProj, b.MMProj}} {
		l, err := Walk(f.data)
		if err != nil {
			return nil, fmt.Errorf("hostile: %s: %w", f.role, err)
		}
		muts := HeaderMutations(f.data, l)
		nTrunc := 0
		if !full {
			nTrunc = 2 * perGroup
		}
		muts = append(muts, Truncations(f.data, l, nTrunc)...)
		edits, renames := lmEdits(), lmRequired
		if f.role == RoleMMProj {
			edits, renames = mmprojEdits(l), mmprojRequired
		}
		vm, err := ValueMutations(f.data, l, edits)
		if err != nil {
			return nil, err
		}
		muts = append(muts, vm...)
		for _, r := range renames {
			m, err := RenameTensor(l, r.name, r.want, r.owner)
			if err != nil {
				return nil, err
			}
			muts = append(muts, m)
		}
		for _, te := range typeEdits[f.role] {
			owner := ""
			if f.role == RoleLM && te.key != gguf.KeyAlignment {
				owner = OwnerLMHparams
			}
			m, err := ChangeKeyType(l, te.key, te.to, `\Q`+te.key+`\E`, owner)
			if err != nil {
				return nil, err
			}
			muts = append(muts, m)
		}
		if !full {
			muts = sample(muts, perGroup)
		}
		for _, m := range muts {
			data, apply := f.data, m.Apply
			cases = append(cases, Case{Name: string(f.role) + "/" + m.Name, Group: string(f.role) + "/" + m.Group, Role: f.role,
				Data: func() []byte { return apply(data) }, Want: m.Want, Owner: m.Owner})
		}
	}
	img := ImageMutations(b.Images)
	img = append(img, UnsupportedFiles()...)
	img = append(img, ImageMutation{Name: "gguf-as-image", Group: "image/unsupported", Want: `GGUF model file`, Data: b.MMProj[:4096]})
	for _, m := range img {
		data := m.Data
		cases = append(cases, Case{Name: "image/" + m.Name, Group: m.Group, Role: RoleImage,
			Data: func() []byte { return data }, Want: m.Want})
	}
	for _, r := range []Role{RoleLM, RoleMMProj, RoleImage} {
		cases = append(cases,
			Case{Name: string(r) + "/special/fifo", Group: "special", Role: r, Special: "fifo", Want: `not a regular file|named pipe|FIFO|fifo`, Owner: OwnerHangs},
			Case{Name: string(r) + "/special/dir", Group: "special", Role: r, Special: "dir", Want: `directory`},
			Case{Name: string(r) + "/special/missing", Group: "special", Role: r, Special: "missing", Want: `no such file`},
			Case{Name: string(r) + "/special/empty", Group: "special", Role: r, Data: func() []byte { return nil },
				Want: `empty|not a GGUF file|too short`},
		)
	}
	cases = append(cases,
		Case{Name: "lm/special/mmproj-as-lm", Group: "special", Role: RoleLM, Special: "swap", Want: `clip|architecture|vision`, Owner: OwnerLMHparams},
		Case{Name: "mmproj/special/lm-as-mmproj", Group: "special", Role: RoleMMProj, Special: "swap", Want: `vision encoder`},
		Case{Name: "lm/special/image-as-lm", Group: "special", Role: RoleLM, Data: func() []byte { return b.Images["png"] }, Want: `not a GGUF file`},
		Case{Name: "mmproj/special/image-as-mmproj", Group: "special", Role: RoleMMProj, Data: func() []byte { return b.Images["jpeg"] }, Want: `not a GGUF file`},
		Case{Name: "image/special/save-mask-over-image", Group: "special", Role: RoleImage, Special: "save-mask-over-image",
			Want: `save-mask|same file|overwrite|input`, Owner: OwnerLostData},
	)
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			return nil, fmt.Errorf("hostile: duplicate case name %s", c.Name)
		}
		seen[c.Name] = true
	}
	return cases, nil
}

// sample keeps up to n mutations of each group, spread over the file; the
// value and missing-tensor groups are kept whole (each is a distinct rule).
func sample(ms []Mutation, n int) []Mutation {
	groups := map[string][]Mutation{}
	var order []string
	for _, m := range ms {
		if _, ok := groups[m.Group]; !ok {
			order = append(order, m.Group)
		}
		groups[m.Group] = append(groups[m.Group], m)
	}
	sort.Strings(order)
	var out []Mutation
	for _, g := range order {
		if g == "value" || g == "missing-tensor" || g == "key-type" || g == "truncate" {
			out = append(out, groups[g]...)
			continue
		}
		out = append(out, spread(groups[g], n)...)
	}
	return out
}

type rename struct{ name, want, owner string }

// The tensors each loader cannot do without; renaming one makes it
// missing. The LM's are llama.cpp's (llama-model.cpp, LLM_ARCH_LLAMA).
var lmRequired = []rename{
	{"token_embd.weight", `token_embd\.weight`, ""},
	{"output_norm.weight", `output_norm\.weight`, ""},
	{"blk.0.attn_q.weight", `blk\.0\.attn_q\.weight`, ""},
	{"blk.0.ffn_down.weight", `blk\.0\.ffn_down\.weight`, ""},
	{"blk.0.attn_norm.weight", `blk\.0\.attn_norm\.weight`, ""},
}

var mmprojRequired = []rename{
	{"v.class_embd", `v\.class_embd`, ""},
	{"v.patch_embd.weight", `v\.patch_embd\.weight`, ""},
	{"v.position_embd.weight", `v\.position_embd\.weight`, ""},
	{"v.blk.0.attn_q.weight", `v\.blk\.0\.attn_q\.weight`, ""},
	{"v.blk.1.attn_q.weight", `v\.blk\.1\.attn_q\.weight|blocks`, ""},
	{"v.blk.1.ffn_up.weight", `v\.blk\.1\.ffn_up\.weight`, ""},
	{"v.blk.0.attn_out.weight", `v\.blk\.0\.attn_out\.weight`, ""},
	{"mm.0.weight", `mm\.0\.weight`, ""},
	{"mm.2.bias", `mm\.2\.bias`, ""},
}

var nan32 = float32(math.NaN())

// lmEdits are language-model values llama.cpp must not be given (issue 16
// item 1: its loader or first graph asserts on them) and values its own
// loader refuses. llama.context_length and llama.vocab_size are left out:
// llama.cpp loads and runs with any value of them.
func lmEdits() []ValueEdit {
	o := OwnerLMHparams
	v := func(key, label string, val any, want string) ValueEdit {
		return ValueEdit{Key: key, Elem: -1, Label: label, Value: val, Want: want, Owner: o}
	}
	k := func(key string) string { return `\Q` + key + `\E` }
	return []ValueEdit{
		v("llama.block_count", "0", uint32(0), k("llama.block_count")),
		v("llama.block_count", "max", uint32(math.MaxUint32), k("llama.block_count")),
		v("llama.block_count", "2", uint32(2), k("llama.block_count")+`|blk\.1`),
		v("llama.embedding_length", "0", uint32(0), k("llama.embedding_length")),
		v("llama.embedding_length", "17", uint32(17), k("llama.embedding_length")+`|token_embd`),
		v("llama.attention.head_count", "0", uint32(0), k("llama.attention.head_count")),
		v("llama.attention.head_count", "3", uint32(3), k("llama.attention.head_count")),
		v("llama.attention.head_count_kv", "0", uint32(0), k("llama.attention.head_count_kv")),
		v("llama.attention.head_count_kv", "3", uint32(3), k("llama.attention.head_count_kv")),
		v("llama.feed_forward_length", "0", uint32(0), k("llama.feed_forward_length")),
		v("llama.rope.dimension_count", "0", uint32(0), k("llama.rope.dimension_count")),
		v("llama.rope.dimension_count", "1M", uint32(1<<20), k("llama.rope.dimension_count")),
		v("llama.attention.layer_norm_rms_epsilon", "-1", float32(-1), k("llama.attention.layer_norm_rms_epsilon")),
		v("llama.attention.layer_norm_rms_epsilon", "NaN", nan32, k("llama.attention.layer_norm_rms_epsilon")),
		v("llama.attention.layer_norm_rms_epsilon", "Inf", float32(math.Inf(1)), k("llama.attention.layer_norm_rms_epsilon")),
		v("llama.rope.freq_base", "NaN", nan32, k("llama.rope.freq_base")),
		v("llama.rope.freq_base", "-1", float32(-1), k("llama.rope.freq_base")),
		v("general.architecture", "llamb", "llamb", `llamb|architecture`),
		v("tokenizer.ggml.model", "xxxxx", "xxxxx", `xxxxx|tokenizer`),
		v("general.alignment", "0", uint32(0), `general\.alignment`),
		v("general.alignment", "3", uint32(3), `general\.alignment`),
		v("general.alignment", "2^30", uint32(1<<30), `general\.alignment|past the end|beyond the file size`),
		// A BYTE token must read "<0xNN>": llama.cpp's vocabulary loader
		// throws basic_string::substr on any other piece.
		{Key: "tokenizer.ggml.token_type", Elem: 300, Label: "byte", Value: int32(6), Want: `token_type|byte`, Owner: o},
	}
}

// typeEdits change the type of keys the loaders read to another type of
// the same size, so only the loaders' type checks can refuse them.
var typeEdits = map[Role][]struct {
	key string
	to  gguf.ValueType
}{
	RoleLM: {
		{"llama.block_count", gguf.ValFloat32}, {"llama.embedding_length", gguf.ValFloat32},
		{"llama.attention.head_count", gguf.ValFloat32}, {"llama.feed_forward_length", gguf.ValFloat32},
		{"llama.attention.layer_norm_rms_epsilon", gguf.ValUint32}, {"llama.rope.freq_base", gguf.ValUint32},
		{"tokenizer.ggml.add_bos_token", gguf.ValUint8}, {"general.alignment", gguf.ValFloat32},
	},
	RoleMMProj: {
		{"clip.vision.image_size", gguf.ValFloat32}, {"clip.vision.patch_size", gguf.ValFloat32},
		{"clip.vision.embedding_length", gguf.ValFloat32}, {"clip.vision.block_count", gguf.ValFloat32},
		{"clip.vision.attention.head_count", gguf.ValFloat32}, {"clip.vision.feed_forward_length", gguf.ValFloat32},
		{"clip.vision.attention.layer_norm_epsilon", gguf.ValUint32}, {"clip.has_vision_encoder", gguf.ValUint8},
		{"clip.use_gelu", gguf.ValInt8}, {"general.alignment", gguf.ValInt32},
	},
}

// mmprojEdits are projector values the encoder must refuse by name.
func mmprojEdits(l *Layout) []ValueEdit {
	v := func(key, label string, val any, want string) ValueEdit {
		return ValueEdit{Key: key, Elem: -1, Label: label, Value: val, Want: want}
	}
	e := func(key string, i int, label string, val any, want string) ValueEdit {
		return ValueEdit{Key: key, Elem: i, Label: label, Value: val, Want: want}
	}
	k := func(key string) string { return `\Q` + key + `\E` }
	edits := []ValueEdit{
		v("clip.vision.image_size", "0", uint32(0), k("clip.vision.image_size")),
		v("clip.vision.image_size", "max", uint32(math.MaxUint32), k("clip.vision.image_size")),
		v("clip.vision.image_size", "+1", uint32(29), k("clip.vision.image_size")),
		v("clip.vision.image_size", "x2", uint32(56), `v\.position_embd\.weight`),
		v("clip.vision.patch_size", "0", uint32(0), k("clip.vision.patch_size")),
		v("clip.vision.patch_size", "5", uint32(5), k("clip.vision.patch_size")),
		v("clip.vision.patch_size", "max", uint32(math.MaxUint32), k("clip.vision.patch_size")),
		v("clip.vision.embedding_length", "0", uint32(0), k("clip.vision.embedding_length")),
		v("clip.vision.embedding_length", "max", uint32(math.MaxUint32), k("clip.vision.embedding_length")),
		v("clip.vision.embedding_length", "x2", uint32(32), `v\.patch_embd\.weight|tensor`),
		v("clip.vision.attention.head_count", "0", uint32(0), k("clip.vision.attention.head_count")),
		v("clip.vision.attention.head_count", "3", uint32(3), `head_count`),
		v("clip.vision.attention.head_count", "max", uint32(math.MaxUint32), k("clip.vision.attention.head_count")),
		v("clip.vision.feed_forward_length", "0", uint32(0), k("clip.vision.feed_forward_length")),
		v("clip.vision.feed_forward_length", "2^31", uint32(1<<31), k("clip.vision.feed_forward_length")),
		v("clip.vision.block_count", "0", uint32(0), k("clip.vision.block_count")),
		v("clip.vision.block_count", "3", uint32(3), `block_count|feature_layer`),
		v("clip.vision.block_count", "max", uint32(math.MaxUint32), k("clip.vision.block_count")),
		v("clip.vision.attention.layer_norm_epsilon", "0", float32(0), k("clip.vision.attention.layer_norm_epsilon")),
		v("clip.vision.attention.layer_norm_epsilon", "-1", float32(-1), k("clip.vision.attention.layer_norm_epsilon")),
		v("clip.vision.attention.layer_norm_epsilon", "NaN", nan32, k("clip.vision.attention.layer_norm_epsilon")),
		v("clip.vision.attention.layer_norm_epsilon", "Inf", float32(math.Inf(1)), k("clip.vision.attention.layer_norm_epsilon")),
		v("clip.has_vision_encoder", "false", false, `vision encoder`),
		v("clip.projector_type", "ldp", "ldp", `projector type "ldp"`),
		v("general.alignment", "0", uint32(0), `general\.alignment`),
		v("general.alignment", "3", uint32(3), `general\.alignment`),
		v("general.alignment", "2^30", uint32(1<<30), `general\.alignment|past the end|beyond the file size`),
		e("clip.vision.image_mean", 0, "NaN", nan32, `image_mean|image_std`),
		e("clip.vision.image_std", 1, "0", float32(0), `image_std`),
		e("clip.vision.image_std", 2, "NaN", nan32, `image_std`),
		e("clip.vision.image_std", 0, "Inf", float32(math.Inf(1)), `image_std`),
	}
	for _, key := range l.Keys {
		if key == "clip.vision.feature_layer" {
			edits = append(edits,
				e(key, 0, "0", int32(0), `feature_layer 0`),
				e(key, 0, "-1", int32(-1), `feature_layer -1`),
				e(key, 0, "99", int32(99), `feature_layer 99`),
			)
		}
	}
	return edits
}
