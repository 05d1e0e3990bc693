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
	if int(t) < len(ggmlTypes) && ggmlTypes[t].name != "" {
		return ggmlTypes[t].name
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// ggmlType is one entry of ggml's type_traits: elements per block and bytes
// per block. The reader needs every type a GGUF file may hold (a Q4_K_M
// model is mostly Q4_K and Q6_K) to size and place tensors, even those this
// package cannot encode or decode.
type ggmlType struct {
	name        string
	block, size int64
}

// ggmlTypes is indexed by ggml_type, as in the pinned ggml (ggml.h,
// ggml.c's type_traits, block sizes from ggml-common.h's static_asserts);
// removed types (4, 5, 31..33, 36..38) have no entry and are refused like
// ggml does.
var ggmlTypes = [...]ggmlType{
	0:  {"F32", 1, 4},
	1:  {"F16", 1, 2},
	2:  {"Q4_0", 32, 18},
	3:  {"Q4_1", 32, 20},
	6:  {"Q5_0", 32, 22},
	7:  {"Q5_1", 32, 24},
	8:  {"Q8_0", 32, 34},
	9:  {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84},
	11: {"Q3_K", 256, 110},
	12: {"Q4_K", 256, 144},
	13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210},
	15: {"Q8_K", 256, 292},
	16: {"IQ2_XXS", 256, 66},
	17: {"IQ2_XS", 256, 74},
	18: {"IQ3_XXS", 256, 98},
	19: {"IQ1_S", 256, 50},
	20: {"IQ4_NL", 32, 18},
	21: {"IQ3_S", 256, 110},
	22: {"IQ2_S", 256, 82},
	23: {"IQ4_XS", 256, 136},
	24: {"I8", 1, 1},
	25: {"I16", 1, 2},
	26: {"I32", 1, 4},
	27: {"I64", 1, 8},
	28: {"F64", 1, 8},
	29: {"IQ1_M", 256, 56},
	30: {"BF16", 1, 2},
	34: {"TQ1_0", 256, 54},
	35: {"TQ2_0", 256, 66},
	39: {"MXFP4", 32, 17},
}

// DataSize is the data size in bytes (unpadded) of a tensor of any ggml
// type with shape ne, as ggml_nbytes computes it; unlike TensorSize it
// accepts types this package cannot encode. It refuses removed or unknown
// types, non-positive dimensions, a row length that is not a multiple of the
// block size, and sizes past 2^62 bytes.
func DataSize(t Type, ne []int64) (int64, error) {
	if len(ne) < 1 || len(ne) > MaxDims {
		return 0, fmt.Errorf("gguf: tensor must have 1..%d dimensions, got %d", MaxDims, len(ne))
	}
	if int(t) >= len(ggmlTypes) || ggmlTypes[t].block == 0 {
		return 0, fmt.Errorf("gguf: invalid or removed ggml type %d", uint32(t))
	}
	tt := ggmlTypes[t]
	for i, n := range ne {
		if n < 1 {
			return 0, fmt.Errorf("gguf: ne[%d]=%d must be >= 1", i, n)
		}
	}
	if ne[0]%tt.block != 0 {
		return 0, fmt.Errorf("gguf: row length ne[0]=%d is not a multiple of the %s block size %d", ne[0], tt.name, tt.block)
	}
	if ne[0]/tt.block > (1<<62)/tt.size {
		return 0, fmt.Errorf("gguf: tensor shape %v is too large", ne)
	}
	size := ne[0] / tt.block * tt.size
	for _, n := range ne[1:] {
		if size > (1<<62)/n {
			return 0, fmt.Errorf("gguf: tensor shape %v is too large", ne)
		}
		size *= n
	}
	return size, nil
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
