// Package gguf writes (and minimally reads) GGUF v3 files, the container
// format used by ggml / llama.cpp.
//
// Layout (see ggml/include/gguf.h in llama.cpp):
//
//	magic "GGUF" | version u32 (=3) | n_tensors i64 | n_kv i64
//	n_kv × { key string | value type i32 | value }
//	n_tensors × { name string | n_dims u32 | ne[n_dims] i64 | ggml type i32 | offset u64 }
//	zero padding to the alignment
//	tensor data, each tensor starting at data_start+offset and padded to the alignment
//
// Strings are a u64 byte length followed by the bytes (no terminator), bools
// are one byte, everything is little endian. The alignment is 32 unless the
// "general.alignment" u32 key says otherwise.
package gguf

import (
	"fmt"
	"strings"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Version is the GGUF version this package writes.
const Version uint32 = 3

// DefaultAlignment is the data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key holding a custom data alignment (u32).
const KeyAlignment = "general.alignment"

// MaxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME-1 bytes).
const MaxNameLen = 63

// MaxDims is GGML_MAX_DIMS.
const MaxDims = 4

// Type is a ggml tensor data type (enum ggml_type). Only the types this
// package can encode are defined.
type Type uint32

// ggml_type values (ggml/include/ggml.h).
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ4_0 Type = 2
	TypeQ8_0 Type = 8
)

// QK is the block size (elements per block) of Q4_0 and Q8_0.
const QK = 32

// Byte sizes of one quantization block (ggml-common.h).
const (
	BlockQ4_0Size = 2 + QK/2 // ggml_half d + 16 bytes of nibbles
	BlockQ8_0Size = 2 + QK   // ggml_half d + 32 int8
)

var typeNames = map[Type]string{
	TypeF32:  "F32",
	TypeF16:  "F16",
	TypeQ4_0: "Q4_0",
	TypeQ8_0: "Q8_0",
}

// Known reports whether t is a type this package supports.
func (t Type) Known() bool {
	_, ok := typeNames[t]
	return ok
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// ParseType parses "F32", "F16", "Q4_0" or "Q8_0" (case-insensitive).
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if strings.EqualFold(n, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q (want F32, F16, Q4_0 or Q8_0)", s)
}

// MarshalText makes Type print as its name in JSON and flags.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Known() {
		return nil, fmt.Errorf("gguf: cannot marshal unknown type %d", uint32(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText is the inverse of MarshalText.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// BlockSize is the number of elements per block (1 for float types).
func (t Type) BlockSize() int64 {
	switch t {
	case TypeQ4_0, TypeQ8_0:
		return QK
	default:
		return 1
	}
}

// TypeSize is the number of bytes per block.
func (t Type) TypeSize() int64 {
	switch t {
	case TypeF32:
		return 4
	case TypeF16:
		return 2
	case TypeQ4_0:
		return BlockQ4_0Size
	case TypeQ8_0:
		return BlockQ8_0Size
	default:
		return 0
	}
}

// RowSize is the byte size of a row of ne0 elements.
func (t Type) RowSize(ne0 int64) (int64, error) {
	if !t.Known() {
		return 0, fmt.Errorf("gguf: unsupported tensor type %v", t)
	}
	if ne0 < 1 {
		return 0, fmt.Errorf("gguf: row length %d must be >= 1", ne0)
	}
	bs := t.BlockSize()
	if ne0%bs != 0 {
		return 0, fmt.Errorf("gguf: row length ne[0]=%d is not a multiple of the %v block size %d", ne0, t, bs)
	}
	return ne0 / bs * t.TypeSize(), nil
}

// TensorSize is the data size in bytes (unpadded) of a tensor with shape ne.
func TensorSize(t Type, ne []int64) (int64, error) {
	if len(ne) < 1 || len(ne) > MaxDims {
		return 0, fmt.Errorf("gguf: tensor must have 1..%d dimensions, got %d", MaxDims, len(ne))
	}
	for i, n := range ne {
		if n < 1 {
			return 0, fmt.Errorf("gguf: ne[%d]=%d must be >= 1", i, n)
		}
	}
	row, err := t.RowSize(ne[0])
	if err != nil {
		return 0, err
	}
	size := row
	for _, n := range ne[1:] {
		if size > (1<<62)/n {
			return 0, fmt.Errorf("gguf: tensor shape %v is too large", ne)
		}
		size *= n
	}
	return size, nil
}

// ValueType is a GGUF metadata value type (enum gguf_type).
type ValueType uint32

// gguf_type values (ggml/include/gguf.h).
const (
	ValUint8   ValueType = 0
	ValInt8    ValueType = 1
	ValUint16  ValueType = 2
	ValInt16   ValueType = 3
	ValUint32  ValueType = 4
	ValInt32   ValueType = 5
	ValFloat32 ValueType = 6
	ValBool    ValueType = 7
	ValString  ValueType = 8
	ValArray   ValueType = 9
	ValUint64  ValueType = 10
	ValInt64   ValueType = 11
	ValFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("gguf_type(%d)", uint32(v))
}

// fixedSize is the encoded size of a scalar of type v (0 for string/array).
func (v ValueType) fixedSize() int {
	switch v {
	case ValUint8, ValInt8, ValBool:
		return 1
	case ValUint16, ValInt16:
		return 2
	case ValUint32, ValInt32, ValFloat32:
		return 4
	case ValUint64, ValInt64, ValFloat64:
		return 8
	default:
		return 0
	}
}

func alignUp(n, a int64) int64 {
	return (n + a - 1) / a * a
}
