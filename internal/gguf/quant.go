package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// QuantizeQ4_0 quantizes src (len multiple of 32) into Q4_0 blocks in dst,
// bit-for-bit like ggml's quantize_row_q4_0_ref: per block, max is the signed
// value of largest magnitude (first one on ties), d = max/-8, id = 1/d (0 if
// d == 0), q = min(15, int8(x*id + 8.5)); low nibble of byte j holds element j,
// high nibble holds element j+16; the scale is stored as f16.
// It returns the number of bytes written.
func QuantizeQ4_0(dst []byte, src []float32) (int, error) {
	if len(src)%QK != 0 {
		return 0, fmt.Errorf("gguf: Q4_0 row length %d is not a multiple of %d", len(src), QK)
	}
	nb := len(src) / QK
	if len(dst) < nb*BlockQ4_0Size {
		return 0, fmt.Errorf("gguf: Q4_0 destination too small: %d < %d", len(dst), nb*BlockQ4_0Size)
	}
	for i := 0; i < nb; i++ {
		x := src[i*QK : (i+1)*QK]
		var amax, maxv float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax = a
				maxv = v
			}
		}
		d := maxv / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[i*BlockQ4_0Size : (i+1)*BlockQ4_0Size]
		binary.LittleEndian.PutUint16(blk, Float32ToFloat16(d))
		for j := 0; j < QK/2; j++ {
			// explicit float32 conversions forbid fused multiply-add, as in the
			// C reference where x0 is a separate float variable
			x0 := float32(x[j] * id)
			x1 := float32(x[QK/2+j] * id)
			q0 := min(15, uint8(int8(float32(x0+8.5))))
			q1 := min(15, uint8(int8(float32(x1+8.5))))
			blk[2+j] = q0 | q1<<4
		}
	}
	return nb * BlockQ4_0Size, nil
}

// DequantizeQ4_0 is the inverse of QuantizeQ4_0 (ggml's dequantize_row_q4_0).
func DequantizeQ4_0(dst []float32, src []byte) error {
	if len(dst)%QK != 0 {
		return fmt.Errorf("gguf: Q4_0 row length %d is not a multiple of %d", len(dst), QK)
	}
	nb := len(dst) / QK
	if len(src) < nb*BlockQ4_0Size {
		return fmt.Errorf("gguf: Q4_0 source too small: %d < %d", len(src), nb*BlockQ4_0Size)
	}
	for i := 0; i < nb; i++ {
		blk := src[i*BlockQ4_0Size : (i+1)*BlockQ4_0Size]
		d := Float16ToFloat32(binary.LittleEndian.Uint16(blk))
		for j := 0; j < QK/2; j++ {
			dst[i*QK+j] = float32(int(blk[2+j]&0x0f)-8) * d
			dst[i*QK+QK/2+j] = float32(int(blk[2+j]>>4)-8) * d
		}
	}
	return nil
}

// QuantizeQ8_0 quantizes src into Q8_0 blocks like quantize_row_q8_0_ref:
// d = amax/127, q = roundf(x/d) (half away from zero). Returns bytes written.
func QuantizeQ8_0(dst []byte, src []float32) (int, error) {
	if len(src)%QK != 0 {
		return 0, fmt.Errorf("gguf: Q8_0 row length %d is not a multiple of %d", len(src), QK)
	}
	nb := len(src) / QK
	if len(dst) < nb*BlockQ8_0Size {
		return 0, fmt.Errorf("gguf: Q8_0 destination too small: %d < %d", len(dst), nb*BlockQ8_0Size)
	}
	for i := 0; i < nb; i++ {
		x := src[i*QK : (i+1)*QK]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[i*BlockQ8_0Size : (i+1)*BlockQ8_0Size]
		binary.LittleEndian.PutUint16(blk, Float32ToFloat16(d))
		for j, v := range x {
			x0 := float32(v * id)
			blk[2+j] = byte(int8(math.Round(float64(x0))))
		}
	}
	return nb * BlockQ8_0Size, nil
}

// DequantizeQ8_0 is the inverse of QuantizeQ8_0.
func DequantizeQ8_0(dst []float32, src []byte) error {
	if len(dst)%QK != 0 {
		return fmt.Errorf("gguf: Q8_0 row length %d is not a multiple of %d", len(dst), QK)
	}
	nb := len(dst) / QK
	if len(src) < nb*BlockQ8_0Size {
		return fmt.Errorf("gguf: Q8_0 source too small: %d < %d", len(src), nb*BlockQ8_0Size)
	}
	for i := 0; i < nb; i++ {
		blk := src[i*BlockQ8_0Size : (i+1)*BlockQ8_0Size]
		d := Float16ToFloat32(binary.LittleEndian.Uint16(blk))
		for j := 0; j < QK; j++ {
			dst[i*QK+j] = float32(int8(blk[2+j])) * d
		}
	}
	return nil
}

// EncodeRow encodes src as type t into dst, which must hold at least
// t.RowSize(len(src)) bytes. It returns the number of bytes written.
func EncodeRow(t Type, dst []byte, src []float32) (int, error) {
	n, err := t.RowSize(int64(len(src)))
	if err != nil {
		return 0, err
	}
	if int64(len(dst)) < n {
		return 0, fmt.Errorf("gguf: %v destination too small: %d < %d", t, len(dst), n)
	}
	switch t {
	case TypeF32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case TypeF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFloat16(v))
		}
	case TypeQ4_0:
		return QuantizeQ4_0(dst, src)
	case TypeQ8_0:
		return QuantizeQ8_0(dst, src)
	}
	return int(n), nil
}

// DecodeRow decodes len(dst) elements of type t from src into dst.
func DecodeRow(t Type, dst []float32, src []byte) error {
	n, err := t.RowSize(int64(len(dst)))
	if err != nil {
		return err
	}
	if int64(len(src)) < n {
		return fmt.Errorf("gguf: %v source too small: %d < %d", t, len(src), n)
	}
	switch t {
	case TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case TypeF16:
		for i := range dst {
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case TypeQ4_0:
		return DequantizeQ4_0(dst, src)
	case TypeQ8_0:
		return DequantizeQ8_0(dst, src)
	}
	return nil
}

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}
