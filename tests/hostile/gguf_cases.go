package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// Mutation is one corrupted copy of a file. Every mutation makes the file
// invalid whatever the reader does with it (lengths past the end, invalid
// type codes, offsets that break the contiguous layout, values the loaders
// must refuse), so the only right outcome is a clean error.
type Mutation struct {
	Name  string // unique per file: field/owner/how
	Group string // the field kind, to sample the short corpus evenly
	Want  string // regexp the error line must match (besides naming the file)
	Owner string // who fixes the kind, when it is not this package's owner ("" otherwise)
	Apply func(b []byte) []byte
}

func put32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
}

func put64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint64(c[off:], v)
		return c
	}
}

func putBytes(off int, p []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], p)
		return c
	}
}

func truncate(n int) func([]byte) []byte {
	return func(b []byte) []byte { return bytes.Clone(b[:n]) }
}

// q quotes a key or tensor name for a Want regexp.
func q(s string) string { return regexp.QuoteMeta(s) }

// Messages that say a length or an extent runs past the end of the file.
const wantPastEnd = `past the end|beyond the file size|needs? at least|needed \d+ bytes|truncated|too short`

// HeaderMutations corrupts every field of the header of the GGUF file b:
// counts, key names, value types, string and array lengths, tensor names,
// dimensions, types and offsets.
func HeaderMutations(b []byte, l *Layout) []Mutation {
	var ms []Mutation
	add := func(f Field, how, want string, apply func([]byte) []byte) {
		name := string(f.Kind)
		if f.Owner != "" {
			name += "/" + f.Owner
		}
		if f.Kind == FDim || f.Kind == FElemStrLen {
			name += fmt.Sprintf("[%d]", f.Index)
		}
		ms = append(ms, Mutation{Name: name + "/" + how, Group: string(f.Kind), Want: want, Apply: apply})
	}
	// left is what follows a length field, so that length+1 runs past the end.
	left := func(f Field) uint64 { return uint64(len(b) - f.Off - f.Size) }
	names := map[int][]string{} // tensor names by length, for duplicates
	for _, t := range l.Tensors {
		names[len(t.Name)] = append(names[len(t.Name)], t.Name)
	}
	keysByLen := map[int][]string{}
	for _, k := range l.Keys {
		keysByLen[len(k)] = append(keysByLen[len(k)], k)
	}
	for _, f := range l.Fields {
		switch f.Kind {
		case FMagic:
			for _, m := range []string{"GGUX", "\x00\x00\x00\x00", "FUGG", "ggml"} {
				add(f, fmt.Sprintf("%q", m), `not a GGUF file|bad magic`, putBytes(f.Off, []byte(m)))
			}
		case FVersion:
			for _, v := range []uint32{0, 1, 4, 0x03000000, math.MaxUint32} {
				add(f, fmt.Sprint(v), `version`, put32(f.Off, v))
			}
		case FNTensors:
			nt := uint64(len(l.Tensors))
			for _, v := range []uint64{nt + 1, nt + 1000, 1 << 40, math.MaxUint64} {
				add(f, fmt.Sprint(v), `tensor`, put64(f.Off, v))
			}
		case FNKV:
			nkv := uint64(len(l.Keys))
			for _, v := range []uint64{0, nkv - 1, nkv + 1, 1 << 40, math.MaxUint64} {
				add(f, fmt.Sprint(v), `key|tensor`, put64(f.Off, v))
			}
		case FKeyLen:
			// 0: the name's first bytes become the type, never a valid one
			// for an ASCII name.
			add(f, "0", `key`, put64(f.Off, 0))
			add(f, "past-end", `key.*`+wantPastEnd, put64(f.Off, left(f)+1))
			add(f, "2^63", `key.*(`+wantPastEnd+`|over the limit)`, put64(f.Off, 1<<63))
		case FKeyName:
			for _, other := range keysByLen[f.Size] {
				// general.alignment is checked as it is read, before the
				// duplicate further on would be seen.
				if other != f.Owner && other != gguf.KeyAlignment {
					add(f, "dup", `duplicate key`, putBytes(f.Off, []byte(other)))
					break
				}
			}
		case FValType:
			add(f, "13", q(f.Owner)+`.*type`, put32(f.Off, 13))
			add(f, "max", q(f.Owner)+`.*type`, put32(f.Off, math.MaxUint32))
		case FStrLen:
			add(f, "past-end", q(f.Owner)+`.*(`+wantPastEnd+`)`, put64(f.Off, left(f)+1))
			add(f, "2^63", q(f.Owner), put64(f.Off, 1<<63))
		case FArrType:
			add(f, "13", q(f.Owner)+`.*type`, put32(f.Off, 13))
			add(f, "array", q(f.Owner)+`.*type`, put32(f.Off, uint32(gguf.ValArray)))
		case FArrLen:
			add(f, "past-end", q(f.Owner)+`.*(`+wantPastEnd+`)`, put64(f.Off, left(f)+1))
			add(f, "2^62", q(f.Owner), put64(f.Off, 1<<62))
		case FElemStrLen:
			add(f, "past-end", q(f.Owner)+`.*(`+wantPastEnd+`)`, put64(f.Off, left(f)+1))
			add(f, "2^63", q(f.Owner), put64(f.Off, 1<<63))
		case FTensorLen:
			// 0: the name's first bytes become n_dims, never 1..4 for ASCII.
			add(f, "0", `tensor`, put64(f.Off, 0))
			add(f, "64", `tensor.*(name|dimensions|type|offset)`, put64(f.Off, 64))
			add(f, "past-end", `tensor.*(`+wantPastEnd+`)`, put64(f.Off, left(f)+1))
			add(f, "2^63", `tensor`, put64(f.Off, 1<<63))
		case FTensorName:
			for _, other := range names[f.Size] {
				if other != f.Owner {
					add(f, "dup", `duplicate tensor name`, putBytes(f.Off, []byte(other)))
					break
				}
			}
		case FNDims:
			for _, v := range []uint32{0, 5, math.MaxUint32} {
				add(f, fmt.Sprint(v), q(f.Owner)+`.*dimensions`, put32(f.Off, v))
			}
		case FDim:
			ne := int64(binary.LittleEndian.Uint64(b[f.Off:]))
			if f.Index == 1 {
				// Swapping a matrix's dimensions keeps its size and the
				// layout: only the loader's shape check can refuse it.
				if ne0 := binary.LittleEndian.Uint64(b[f.Off-8:]); ne0 != uint64(ne) {
					add(f, "swap", q(f.Owner), func(b []byte) []byte {
						c := bytes.Clone(b)
						binary.LittleEndian.PutUint64(c[f.Off-8:], uint64(ne))
						binary.LittleEndian.PutUint64(c[f.Off:], ne0)
						return c
					})
				}
			}
			add(f, "0", q(f.Owner), put64(f.Off, 0))
			add(f, "-1", q(f.Owner), put64(f.Off, math.MaxUint64))
			add(f, "2^40", `tensor`, put64(f.Off, 1<<40))
			add(f, "x2", `tensor`, put64(f.Off, uint64(2*ne)))
		case FTensorType:
			add(f, "removed-4", q(f.Owner)+`.*type`, put32(f.Off, 4))
			add(f, "40", q(f.Owner)+`.*type`, put32(f.Off, 40))
			add(f, "max", q(f.Owner)+`.*type`, put32(f.Off, math.MaxUint32))
			add(f, "Q4_K", q(f.Owner)+`.*(block size|type)`, put32(f.Off, 12))
			// A type of the same element size keeps the layout valid: only
			// the loader's type checks can refuse it.
			switch binary.LittleEndian.Uint32(b[f.Off:]) {
			case uint32(gguf.TypeF32):
				add(f, "I32", q(f.Owner)+`.*type|type.*`+q(f.Owner), put32(f.Off, 26))
			case uint32(gguf.TypeF16):
				add(f, "I16", q(f.Owner)+`.*type|type.*`+q(f.Owner), put32(f.Off, 25))
			}
		case FOffset:
			off := binary.LittleEndian.Uint64(b[f.Off:])
			add(f, "+1", q(f.Owner)+`.*offset`, put64(f.Off, off+1))
			add(f, "+align", q(f.Owner)+`.*offset`, put64(f.Off, off+uint64(l.Alignment)))
			add(f, "2^62", q(f.Owner)+`.*offset`, put64(f.Off, 1<<62))
		}
	}
	return ms
}

// Truncations cuts b at offsets spread over the header fields (each field's
// first and last byte) and the data section, every one short of the last
// tensor's end. At most n of them (n <= 0: all).
func Truncations(b []byte, l *Layout, n int) []Mutation {
	set := map[int]bool{0: true, 1: true, 3: true, 4: true, 7: true, 12: true, 23: true}
	for _, f := range l.Fields {
		set[f.Off] = true
		set[f.Off+f.Size-1] = true
	}
	set[l.HeaderEnd] = true
	set[l.DataOffset] = true
	for _, t := range l.Tensors {
		set[t.Start+1] = true
		set[(t.Start+t.End)/2] = true
		set[t.End-1] = true
	}
	end := l.Tensors[len(l.Tensors)-1].End
	var offs []int
	for o := range set {
		if o >= 0 && o < end && o < len(b) {
			offs = append(offs, o)
		}
	}
	sort.Ints(offs)
	offs = spread(offs, n)
	ms := make([]Mutation, 0, len(offs))
	for _, o := range offs {
		want := `truncated|past the end|beyond the file size|needed \d+ bytes|too short|not a GGUF file|reading magic`
		ms = append(ms, Mutation{Name: fmt.Sprintf("truncate/%d", o), Group: "truncate", Want: want, Apply: truncate(o)})
	}
	return ms
}

// spread keeps n evenly spaced items of xs (all when n <= 0 or n >= len).
func spread[T any](xs []T, n int) []T {
	if n <= 0 || n >= len(xs) {
		return xs
	}
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, xs[i*(len(xs)-1)/max(n-1, 1)])
	}
	return out
}

// ValueEdit sets a scalar value in place (same size), or an array element.
type ValueEdit struct {
	Key   string
	Elem  int // array element index; -1 for a scalar
	Label string
	Value any // uint32, int32, float32, bool or a same-length string
	Want  string
	Owner string
}

// ValueMutations applies in-place value edits to the keys of b.
func ValueMutations(b []byte, l *Layout, edits []ValueEdit) ([]Mutation, error) {
	var ms []Mutation
	for _, e := range edits {
		off, size, err := valueOffset(b, l, e.Key, e.Elem)
		if err != nil {
			return nil, err
		}
		var p []byte
		switch v := e.Value.(type) {
		case uint32:
			p = binary.LittleEndian.AppendUint32(nil, v)
		case int32:
			p = binary.LittleEndian.AppendUint32(nil, uint32(v))
		case float32:
			p = binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))
		case bool:
			p = []byte{0}
			if v {
				p[0] = 1
			}
		case string:
			p = []byte(v)
		default:
			return nil, fmt.Errorf("hostile: value %T", e.Value)
		}
		if len(p) != size {
			return nil, fmt.Errorf("hostile: %s: value %v is %d bytes, the field %d", e.Key, e.Value, len(p), size)
		}
		name := "value/" + e.Key
		if e.Elem >= 0 {
			name += fmt.Sprintf("[%d]", e.Elem)
		}
		ms = append(ms, Mutation{Name: name + "/" + e.Label, Group: "value", Want: e.Want, Owner: e.Owner, Apply: putBytes(off, p)})
	}
	return ms, nil
}

// valueOffset finds where key's value (or its elem-th array element) lies:
// for strings, the bytes after the length.
func valueOffset(b []byte, l *Layout, key string, elem int) (int, int, error) {
	for _, f := range l.Fields {
		if f.Owner != key {
			continue
		}
		switch {
		case elem < 0 && f.Kind == FValue:
			return f.Off, f.Size, nil
		case elem < 0 && f.Kind == FStrLen:
			return f.Off + 8, int(binary.LittleEndian.Uint64(b[f.Off:])), nil
		case elem >= 0 && f.Kind == FArrLen && fixedSize(f.Type) > 0:
			if elem >= int(binary.LittleEndian.Uint64(b[f.Off:])) {
				return 0, 0, fmt.Errorf("hostile: %s has no element %d", key, elem)
			}
			return f.Off + 8 + elem*fixedSize(f.Type), fixedSize(f.Type), nil
		}
	}
	return 0, 0, fmt.Errorf("hostile: no value field for %s[%d]", key, elem)
}

// RenameTensor replaces the last byte of a tensor's name, so that the
// loader finds it missing (and an unknown tensor in its place).
func RenameTensor(l *Layout, name, want, owner string) (Mutation, error) {
	for _, f := range l.Fields {
		if f.Kind == FTensorName && f.Owner == name {
			last := byte('X')
			if strings.HasSuffix(name, "X") {
				last = 'Y'
			}
			return Mutation{Name: "missing-tensor/" + name, Group: "missing-tensor", Want: want, Owner: owner,
				Apply: putBytes(f.Off+f.Size-1, []byte{last})}, nil
		}
	}
	return Mutation{}, fmt.Errorf("hostile: no tensor %s", name)
}

// ChangeKeyType changes the type of a scalar key to another type of the
// same size (u32 <-> i32 <-> f32, bool <-> u8), so the value's bytes stay
// in place.
func ChangeKeyType(l *Layout, key string, to gguf.ValueType, want, owner string) (Mutation, error) {
	for _, f := range l.Fields {
		if f.Kind == FValType && f.Owner == key {
			return Mutation{Name: fmt.Sprintf("key-type/%s/%v", key, to), Group: "key-type", Want: want, Owner: owner,
				Apply: put32(f.Off, uint32(to))}, nil
		}
	}
	return Mutation{}, fmt.Errorf("hostile: no key %s", key)
}
