package testmodel

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// genWorkers is the parallelism of tensor generation (0: GOMAXPROCS). The
// output never depends on it.
var genWorkers = 0

// q4ChunkBlocks is the number of Q4_0 blocks generated per chunk (~1.2 MB).
const q4ChunkBlocks = 1 << 16

// q4RMS is the RMS of (q-8) for q uniform over 0..15: sqrt((16^2-1)/12 + 0.25).
var q4RMS = math.Sqrt(21.5)

// tensorSeed derives a per-tensor seed from the spec seed and the tensor name,
// so every tensor's content is independent of generation order.
func tensorSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return splitmix64(seed ^ splitmix64(h.Sum64()))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// tensorDef is one tensor to generate: values mean + std*N(0,1) for float
// types; for Q4_0, random 4-bit codes with a per-block scale of random sign
// and magnitude std/q4RMS (same RMS as the intended distribution; the values
// do not matter for compute time, and direct generation is ~50x faster than
// quantizing Gaussian floats).
type tensorDef struct {
	name      string
	typ       gguf.Type
	ne        []int64
	mean, std float64
}

func (d tensorDef) source(seed uint64) gguf.Source {
	ts := tensorSeed(seed, d.name)
	if d.typ == gguf.TypeQ4_0 {
		return q4Source(d.ne, d.std, ts)
	}
	mean, std := d.mean, d.std
	return gguf.RowSource(d.typ, d.ne, genWorkers, func(row int64, dst []float32) {
		r := rand.New(rand.NewPCG(ts, uint64(row)))
		for i := range dst {
			dst[i] = float32(mean + std*r.NormFloat64())
		}
	})
}

func q4Source(ne []int64, std float64, seed uint64) gguf.Source {
	size, err := gguf.TensorSize(gguf.TypeQ4_0, ne)
	if err != nil {
		return func(w io.Writer) error { return err }
	}
	pos := gguf.Float32ToFloat16(float32(std / q4RMS))
	neg := pos | 0x8000
	const bs = gguf.BlockQ4_0Size
	return gguf.ChunkedSource(size, q4ChunkBlocks*bs, genWorkers, func(i int64, buf []byte) error {
		p := rand.NewPCG(seed, uint64(i))
		var signs uint64
		for b := 0; b < len(buf)/bs; b++ {
			if b%64 == 0 {
				signs = p.Uint64()
			}
			blk := buf[b*bs : (b+1)*bs]
			d := pos
			if signs>>(b%64)&1 == 1 {
				d = neg
			}
			binary.LittleEndian.PutUint16(blk, d)
			binary.LittleEndian.PutUint64(blk[2:], p.Uint64())
			binary.LittleEndian.PutUint64(blk[10:], p.Uint64())
		}
		return nil
	})
}
