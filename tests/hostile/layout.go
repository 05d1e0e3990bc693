package hostile

import (
	"encoding/binary"
	"fmt"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// FieldKind names one kind of field in a GGUF header.
type FieldKind string

// The fields of a GGUF v3 header, in file order (see internal/gguf's
// package comment for the layout).
const (
	FMagic      FieldKind = "magic"
	FVersion    FieldKind = "version"
	FNTensors   FieldKind = "n_tensors"
	FNKV        FieldKind = "n_kv"
	FKeyLen     FieldKind = "key_len"
	FKeyName    FieldKind = "key_name"
	FValType    FieldKind = "value_type"
	FValue      FieldKind = "value" // a scalar
	FStrLen     FieldKind = "string_len"
	FArrType    FieldKind = "array_type"
	FArrLen     FieldKind = "array_len"
	FElemStrLen FieldKind = "array_string_len"
	FTensorLen  FieldKind = "tensor_name_len"
	FTensorName FieldKind = "tensor_name"
	FNDims      FieldKind = "n_dims"
	FDim        FieldKind = "dim"
	FTensorType FieldKind = "tensor_type"
	FOffset     FieldKind = "offset"
)

// Field is one field of a header: where it is and what it belongs to.
type Field struct {
	Kind  FieldKind
	Off   int
	Size  int
	Owner string         // the key or tensor the field belongs to
	Index int            // the key or tensor index; the dimension for FDim
	Type  gguf.ValueType // a value's type (FValue, FStrLen)
}

// Layout is a GGUF file's header, field by field.
type Layout struct {
	Fields     []Field
	HeaderEnd  int // end of the last tensor info
	DataOffset int // start of the data section
	Alignment  int
	Tensors    []Tensor
	Keys       []string
}

// Tensor is where a tensor's data lies in the file.
type Tensor struct {
	Name       string
	Start, End int
}

// Walk lists every field of the GGUF header in b. It only accepts the
// well-formed files the generator starts from.
func Walk(b []byte) (*Layout, error) {
	w := &walker{b: b}
	l := &Layout{Alignment: gguf.DefaultAlignment}
	add := func(k FieldKind, off, size int, owner string, idx int, t gguf.ValueType) {
		l.Fields = append(l.Fields, Field{Kind: k, Off: off, Size: size, Owner: owner, Index: idx, Type: t})
	}
	if string(w.bytes(4)) != gguf.Magic {
		return nil, fmt.Errorf("hostile: not a GGUF file")
	}
	add(FMagic, 0, 4, "", 0, 0)
	add(FVersion, 4, 4, "", 0, 0)
	w.u32()
	add(FNTensors, 8, 8, "", 0, 0)
	nt := w.u64()
	add(FNKV, 16, 8, "", 0, 0)
	nkv := w.u64()
	for i := 0; i < int(nkv) && w.err == nil; i++ {
		off := w.off
		n := int(w.u64())
		key := string(w.bytes(n))
		add(FKeyLen, off, 8, key, i, 0)
		add(FKeyName, off+8, n, key, i, 0)
		l.Keys = append(l.Keys, key)
		add(FValType, w.off, 4, key, i, 0)
		t := gguf.ValueType(w.u32())
		if t == gguf.ValArray {
			add(FArrType, w.off, 4, key, i, 0)
			et := gguf.ValueType(w.u32())
			add(FArrLen, w.off, 8, key, i, et)
			n := int(w.u64())
			for j := 0; j < n && w.err == nil; j++ {
				if et == gguf.ValString && (j == 0 || j == n/2 || j == n-1) {
					add(FElemStrLen, w.off, 8, key, j, et)
				}
				w.value(et)
			}
			continue
		}
		if t == gguf.ValString {
			add(FStrLen, w.off, 8, key, i, t)
		} else {
			add(FValue, w.off, fixedSize(t), key, i, t)
		}
		if key == gguf.KeyAlignment && t == gguf.ValUint32 {
			l.Alignment = int(binary.LittleEndian.Uint32(w.b[w.off:]))
		}
		w.value(t)
	}
	type info struct {
		name string
		size int64
		off  int64
	}
	var infos []info
	for i := 0; i < int(nt) && w.err == nil; i++ {
		off := w.off
		n := int(w.u64())
		name := string(w.bytes(n))
		add(FTensorLen, off, 8, name, i, 0)
		add(FTensorName, off+8, n, name, i, 0)
		add(FNDims, w.off, 4, name, i, 0)
		nd := int(w.u32())
		ne := make([]int64, nd)
		for d := range nd {
			add(FDim, w.off, 8, name, d, 0)
			ne[d] = int64(w.u64())
		}
		add(FTensorType, w.off, 4, name, i, 0)
		typ := gguf.Type(w.u32())
		add(FOffset, w.off, 8, name, i, 0)
		toff := int64(w.u64())
		size, err := gguf.DataSize(typ, ne)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info{name, size, toff})
	}
	if w.err != nil {
		return nil, w.err
	}
	l.HeaderEnd = w.off
	l.DataOffset = (w.off + l.Alignment - 1) / l.Alignment * l.Alignment
	for _, in := range infos {
		start := l.DataOffset + int(in.off)
		l.Tensors = append(l.Tensors, Tensor{Name: in.name, Start: start, End: start + int(in.size)})
	}
	return l, nil
}

type walker struct {
	b   []byte
	off int
	err error
}

func (w *walker) bytes(n int) []byte {
	if w.err != nil || n < 0 || w.off+n > len(w.b) {
		if w.err == nil {
			w.err = fmt.Errorf("hostile: header runs past the end at %d", w.off)
		}
		return nil
	}
	p := w.b[w.off : w.off+n]
	w.off += n
	return p
}

func (w *walker) u32() uint32 {
	p := w.bytes(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (w *walker) u64() uint64 {
	p := w.bytes(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (w *walker) value(t gguf.ValueType) {
	if t == gguf.ValString {
		w.bytes(int(w.u64()))
		return
	}
	if n := fixedSize(t); n > 0 {
		w.bytes(n)
		return
	}
	if w.err == nil {
		w.err = fmt.Errorf("hostile: unexpected value type %v at %d", t, w.off)
	}
}

func fixedSize(t gguf.ValueType) int {
	switch t {
	case gguf.ValUint8, gguf.ValInt8, gguf.ValBool:
		return 1
	case gguf.ValUint16, gguf.ValInt16:
		return 2
	case gguf.ValUint32, gguf.ValInt32, gguf.ValFloat32:
		return 4
	case gguf.ValUint64, gguf.ValInt64, gguf.ValFloat64:
		return 8
	}
	return 0
}
