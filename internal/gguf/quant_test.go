package gguf

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantizeQ4_0KnownRow(t *testing.T) {
	// x[j] = j-16: the largest magnitude is x[0] = -16, so max = -16,
	// d = -16/-8 = 2, id = 0.5 and q = min(15, int8(x*0.5 + 8.5)).
	src := make([]float32, 32)
	for j := range src {
		src[j] = float32(j - 16)
	}
	want := make([]uint8, 32)
	for j := range want {
		// hand evaluation: (j-16)*0.5 + 8.5 = j/2 + 0.5, truncated = (j+1)/2
		want[j] = min(15, uint8((j+1)/2))
	}
	// spot-check the hand values
	assert.Equal(t, uint8(0), want[0])   // -16*0.5+8.5 = 0.5 -> 0
	assert.Equal(t, uint8(2), want[3])   // -13*0.5+8.5 = 2.0 -> 2
	assert.Equal(t, uint8(2), want[4])   // -12*0.5+8.5 = 2.5 -> 2
	assert.Equal(t, uint8(8), want[16])  // 0+8.5 -> 8
	assert.Equal(t, uint8(15), want[31]) // 15*0.5+8.5 = 16 -> clamped to 15

	dst := make([]byte, BlockQ4_0Size)
	n, err := QuantizeQ4_0(dst, src)
	require.NoError(t, err)
	require.Equal(t, BlockQ4_0Size, n)
	assert.Equal(t, []byte{0x00, 0x40}, dst[:2], "d = 2.0 as f16 0x4000, little endian")
	for j := 0; j < 16; j++ {
		assert.Equalf(t, want[j]|want[j+16]<<4, dst[2+j], "byte %d", j)
	}

	got := make([]float32, 32)
	require.NoError(t, DequantizeQ4_0(got, dst))
	for j := range got {
		assert.Equalf(t, float32(int(want[j])-8)*2, got[j], "element %d", j)
	}
	// exact for the even values, error <= d/2 elsewhere (except the clamped top)
	assert.Equal(t, float32(-16), got[0])
	assert.Equal(t, float32(0), got[16])
	assert.Equal(t, float32(14), got[31])
}

func TestQuantizeQ4_0PositiveMaxAndZero(t *testing.T) {
	// max = +8 (largest magnitude, positive): d = -1, id = -1, q = int8(-x + 8.5)
	src := make([]float32, 32)
	src[5] = 8
	src[6] = -3
	src[20] = 2.5
	dst := make([]byte, BlockQ4_0Size)
	_, err := QuantizeQ4_0(dst, src)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0xbc}, dst[:2], "d = -1.0 is f16 0xbc00")
	q := func(j int) uint8 {
		if j < 16 {
			return dst[2+j] & 0x0f
		}
		return dst[2+j-16] >> 4
	}
	assert.Equal(t, uint8(0), q(5))  // -8+8.5 = 0.5 -> 0 -> (0-8)*-1 = 8
	assert.Equal(t, uint8(11), q(6)) // 3+8.5 = 11.5 -> 11
	assert.Equal(t, uint8(6), q(20)) // -2.5+8.5 = 6.0 -> 6
	assert.Equal(t, uint8(8), q(0))  // zeros -> 8
	got := make([]float32, 32)
	require.NoError(t, DequantizeQ4_0(got, dst))
	assert.Equal(t, float32(8), got[5])
	assert.Equal(t, float32(-3), got[6])
	assert.Equal(t, float32(2), got[20])
	assert.Equal(t, float32(0), got[0])

	// all-zero block: d = 0/-8 = -0 (f16 0x8000, as ggml's C code gives), id = 0, every q = 8
	clear(src)
	_, err = QuantizeQ4_0(dst, src)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x80}, dst[:2])
	for j := 2; j < BlockQ4_0Size; j++ {
		assert.Equal(t, uint8(0x88), dst[j])
	}
}

func TestQuantizeQ4_0ErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]float32, 32*64)
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	dst := make([]byte, 64*BlockQ4_0Size)
	_, err := QuantizeQ4_0(dst, src)
	require.NoError(t, err)
	got := make([]float32, len(src))
	require.NoError(t, DequantizeQ4_0(got, dst))
	for b := 0; b < 64; b++ {
		var amax float64
		for _, v := range src[b*32 : (b+1)*32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		d := amax / 8
		for j := b * 32; j < (b+1)*32; j++ {
			// half a step, plus the f16 rounding of d, plus the clamp of the top code
			assert.LessOrEqualf(t, math.Abs(float64(got[j]-src[j])), d*1.01, "elem %d", j)
		}
	}
}

func TestQuantizeQ8_0(t *testing.T) {
	src := make([]float32, 32)
	for j := range src {
		src[j] = float32(j - 16)
	}
	dst := make([]byte, BlockQ8_0Size)
	_, err := QuantizeQ8_0(dst, src)
	require.NoError(t, err)
	// d = 16/127, id = 127/16 = 7.9375; q = round(x*7.9375)
	assert.Equal(t, Float32ToFloat16(16.0/127), uint16(dst[0])|uint16(dst[1])<<8)
	assert.Equal(t, int8(-127), int8(dst[2+0])) // -16
	assert.Equal(t, int8(-8), int8(dst[2+15]))  // -1*7.9375 -> -8
	assert.Equal(t, int8(0), int8(dst[2+16]))   // 0
	assert.Equal(t, int8(16), int8(dst[2+18]))  // 2*7.9375 = 15.875 -> 16
	assert.Equal(t, int8(119), int8(dst[2+31])) // 15*7.9375 = 119.06 -> 119
	got := make([]float32, 32)
	require.NoError(t, DequantizeQ8_0(got, dst))
	d := Float16ToFloat32(Float32ToFloat16(16.0 / 127))
	for j := range got {
		assert.InDelta(t, src[j], got[j], float64(d)/2+1e-3)
	}
}

func TestEncodeDecodeRowTypes(t *testing.T) {
	src := []float32{1, -2, 0.5, 3.25}
	for _, typ := range []Type{TypeF32, TypeF16} {
		n, _ := typ.RowSize(4)
		buf := make([]byte, n)
		_, err := EncodeRow(typ, buf, src)
		require.NoError(t, err)
		got := make([]float32, 4)
		require.NoError(t, DecodeRow(typ, got, buf))
		assert.Equal(t, src, got, typ.String())
	}
	_, err := EncodeRow(TypeQ4_0, make([]byte, 100), make([]float32, 33))
	assert.ErrorContains(t, err, "not a multiple of the Q4_0 block size 32")
	_, err = EncodeRow(TypeQ8_0, make([]byte, 100), make([]float32, 16))
	assert.ErrorContains(t, err, "not a multiple of the Q8_0 block size 32")
}
