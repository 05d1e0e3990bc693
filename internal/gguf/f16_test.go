package gguf

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/x448/float16"
)

func TestFloat32ToFloat16EdgeCases(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"neg zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max half", 65504, 0x7bff},
		{"rounds up to inf", 65520, 0x7c00},      // halfway between 65504 and 65536: ties to even -> inf
		{"just below inf tie", 65519.99, 0x7bff}, // below the tie
		{"overflow", 1e6, 0x7c00},
		{"neg overflow", -1e6, 0xfc00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"nan", float32(math.NaN()), 0x7e00},
		{"smallest normal", 6.103515625e-05, 0x0400},
		{"largest subnormal", 6.097555160522461e-05, 0x03ff},
		{"smallest subnormal", 5.960464477539063e-08, 0x0001},
		{"half of smallest subnormal ties to 0", 2.9802322387695312e-08, 0x0000},
		{"just above half smallest subnormal", 2.9802326e-08, 0x0001},
		{"1.5 smallest subnormal ties to even (2)", 8.940696716308594e-08, 0x0002},
		{"neg subnormal", -5.960464477539063e-08, 0x8001},
		{"tiny underflows to +0", 1e-10, 0x0000},
		{"tiny underflows to -0", -1e-10, 0x8000},
		{"f32 subnormal", math.Float32frombits(1), 0x0000},
		// 1 + 2^-11 is exactly halfway between 1 and 1+2^-10: ties to even (1)
		{"tie to even down", 1 + 1.0/2048, 0x3c00},
		// 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9: ties to even (up)
		{"tie to even up", 1 + 3.0/2048, 0x3c02},
		{"above tie rounds up", 1 + 1.0/2048 + 1.0/65536, 0x3c01},
		{"0.1", 0.1, 0x2e66},
		{"mantissa carry into exponent", 2047.9999, 0x6800}, // rounds to 2048
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equalf(t, c.want, Float32ToFloat16(c.in), "Float32ToFloat16(%g)", c.in)
		})
	}
}

func TestFloat16RoundTripAllValues(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		if f != f { // NaN: must map to a NaN with the same sign
			got := Float32ToFloat16(f)
			require.Equal(t, uint16(0x7e00), got&0x7fff, "NaN 0x%04x", h)
			require.Equal(t, uint16(h)&0x8000, got&0x8000)
			continue
		}
		require.Equalf(t, uint16(h), Float32ToFloat16(f), "0x%04x -> %g", h, f)
		require.Equal(t, float16.Frombits(uint16(h)).Float32(), f, "0x%04x", h)
	}
}

func TestFloat32ToFloat16MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2_000_000; i++ {
		bits := r.Uint32()
		if i%2 == 0 { // concentrate on the half range (exponents 100..145)
			bits = bits&0x807fffff | uint32(100+r.IntN(46))<<23
		}
		f := math.Float32frombits(bits)
		if f != f {
			continue
		}
		want := uint16(float16.Fromfloat32(f))
		require.Equalf(t, want, Float32ToFloat16(f), "bits 0x%08x (%g)", bits, f)
	}
}
