package gguf

import "math"

// Float32ToFloat16 converts f to IEEE 754 binary16 bits, rounding to nearest
// even. Overflow gives ±Inf, values below half the smallest subnormal give ±0,
// NaN gives the canonical quiet NaN 0x7E00 (with the sign), as ggml does.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}

	e := exp - 127 + 15 // rebiased exponent
	switch {
	case e >= 0x1f:
		return sign | 0x7c00 // overflow
	case e >= 1:
		// normal: keep 10 of the 23 mantissa bits
		m := mant >> 13
		rem := mant & 0x1fff
		h := uint32(e)<<10 | m
		if rem > 0x1000 || (rem == 0x1000 && m&1 == 1) {
			h++ // may carry into the exponent, up to Inf: correct
		}
		return sign | uint16(h)
	case e >= -10:
		// subnormal half: value = m * 2^-24, m = M >> (14-e) with the implicit bit
		// (f32 subnormals have exp == 0, so e = -112 and they land below)
		full := mant | 0x800000
		shift := uint32(14 - e) // 14..24
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++ // m == 0x400 is the smallest normal: correct
		}
		return sign | uint16(m)
	default:
		return sign // below 2^-25: rounds to zero
	}
}

// Float16ToFloat32 converts binary16 bits to float32 (exact).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	default:
		// subnormal: mant * 2^-24, exactly representable in float32
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}
