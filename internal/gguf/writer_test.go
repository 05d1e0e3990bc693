package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seq(n int, scale float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i%97-48) * scale
	}
	return out
}

// buildSample declares one tensor of every type and every KV type.
func buildSample(t testing.TB) (*Writer, map[string][]float32) {
	w := NewWriter()
	require.NoError(t, w.AddString("general.architecture", "llama"))
	require.NoError(t, w.SetAlignment(32))
	require.NoError(t, w.AddUint32("llama.block_count", 2))
	require.NoError(t, w.AddInt32("test.i32", -7))
	require.NoError(t, w.AddUint64("test.u64", 1<<40))
	require.NoError(t, w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5))
	require.NoError(t, w.AddBool("tokenizer.ggml.add_bos_token", true))
	require.NoError(t, w.AddBool("tokenizer.ggml.add_eos_token", false))
	require.NoError(t, w.AddStringArray("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "▁hello", ""}))
	require.NoError(t, w.AddFloat32Array("tokenizer.ggml.scores", []float32{0, 0, -1.5, -2}))
	require.NoError(t, w.AddInt32Array("tokenizer.ggml.token_type", []int32{2, 3, 1, 1}))
	require.NoError(t, w.AddUint32Array("llama.test_u32s", []uint32{1, 2, 3}))

	data := map[string][]float32{
		"a.f32":  seq(3*5, 0.25),        // 60 bytes: padded to 64
		"b.f16":  seq(7, 0.5),           // 14 bytes: padded to 32
		"c.q4_0": seq(64*3, 1.0/16),     // 2*18*3 = 108 bytes
		"d.q8_0": seq(32*2*2*2, 1.0/32), // 4d
	}
	require.NoError(t, w.AddTensor("a.f32", TypeF32, []int64{3, 5}, Float32Source(TypeF32, []int64{3, 5}, data["a.f32"])))
	require.NoError(t, w.AddTensor("b.f16", TypeF16, []int64{7}, Float32Source(TypeF16, []int64{7}, data["b.f16"])))
	require.NoError(t, w.AddTensor("c.q4_0", TypeQ4_0, []int64{64, 3}, Float32Source(TypeQ4_0, []int64{64, 3}, data["c.q4_0"])))
	require.NoError(t, w.AddTensor("d.q8_0", TypeQ8_0, []int64{32, 2, 2, 2}, Float32Source(TypeQ8_0, []int64{32, 2, 2, 2}, data["d.q8_0"])))
	return w, data
}

func TestWriterRoundTripOllamaDecoder(t *testing.T) {
	w, _ := buildSample(t)
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	require.NoError(t, err)
	size, err := w.Size()
	require.NoError(t, err)
	require.Equal(t, size, n)
	require.Equal(t, int64(buf.Len()), n)
	require.Zero(t, n%32, "file size is padded to the alignment")

	f, err := ggml.Decode(bytes.NewReader(buf.Bytes()), -1)
	require.NoError(t, err)
	kv := f.KV()
	assert.Equal(t, "llama", kv.Architecture())
	assert.Equal(t, uint32(32), kv.Uint("general.alignment"))
	// ollama's KV helpers prefix the architecture for non-general keys
	assert.Equal(t, uint32(2), kv.Uint("block_count"))
	assert.Equal(t, int32(-7), kv["test.i32"])
	assert.Equal(t, uint64(1<<40), kv["test.u64"])
	assert.Equal(t, float32(1e-5), kv.Float("attention.layer_norm_rms_epsilon"))
	assert.True(t, kv.Bool("tokenizer.ggml.add_bos_token"))
	assert.False(t, kv.Bool("tokenizer.ggml.add_eos_token", true))
	assert.Equal(t, []string{"<unk>", "<s>", "▁hello", ""}, kv.Strings("tokenizer.ggml.tokens"))
	assert.Equal(t, []float32{0, 0, -1.5, -2}, kv.Floats("tokenizer.ggml.scores"))
	assert.Equal(t, []int32{2, 3, 1, 1}, kv.Ints("tokenizer.ggml.token_type"))
	assert.Equal(t, []uint32{1, 2, 3}, kv.Uints("test_u32s"))

	want := w.Tensors()
	got := f.Tensors().Items()
	require.Len(t, got, len(want))
	for i, tt := range got {
		assert.Equal(t, want[i].Name, tt.Name)
		assert.Equal(t, uint32(want[i].Type), tt.Kind)
		assert.Equal(t, uint64(want[i].Offset), tt.Offset)
		assert.Equal(t, uint64(want[i].Size), tt.Size())
		shape := make([]uint64, len(want[i].Ne))
		for j, x := range want[i].Ne {
			shape[j] = uint64(x)
		}
		assert.Equal(t, shape, tt.Shape)
		assert.Zero(t, tt.Offset%32, "tensor offset aligned")
	}
	assert.Equal(t, []int64{0, 64, 96, 224}, []int64{want[0].Offset, want[1].Offset, want[2].Offset, want[3].Offset})
	assert.Zero(t, f.Tensors().Offset%32, "data section aligned")
	// data section: 60->64, 14->32, 108->128, 8 rows*34=272->288 bytes
	assert.Equal(t, uint64(n), f.Tensors().Offset+64+32+128+288)
}

func TestWriterRoundTripOwnReader(t *testing.T) {
	w, data := buildSample(t)
	path := filepath.Join(t.TempDir(), "sample.gguf")
	require.NoError(t, w.WriteFile(path))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, uint32(3), f.Version)
	assert.Equal(t, int64(32), f.Alignment)
	assert.Zero(t, f.DataOffset%32)
	require.Len(t, f.KV, w.NumKV())
	kv, ok := f.Get("general.alignment")
	require.True(t, ok)
	assert.Equal(t, ValUint32, kv.Type)
	kv, _ = f.Get("tokenizer.ggml.token_type")
	assert.Equal(t, ValArray, kv.Type)
	assert.Equal(t, ValInt32, kv.ElemType)
	kv, _ = f.Get("tokenizer.ggml.add_bos_token")
	assert.Equal(t, ValBool, kv.Type)
	assert.Equal(t, true, kv.Value)

	assert.Equal(t, w.Tensors(), f.Tensors)
	for name, src := range data {
		got, err := f.ReadTensorFloat32(name)
		require.NoError(t, err)
		ti, _ := f.Tensor(name)
		switch ti.Type {
		case TypeF32, TypeF16:
			assert.Equal(t, src, got, name) // values are exact in f16
		default:
			for i := range src {
				// |err| <= d (the top code 15 is clamped), d = 3/8 here
				assert.InDelta(t, src[i], got[i], 0.376, "%s[%d]", name, i)
			}
		}
	}
	// the raw Q4_0 bytes equal the reference quantizer's output
	raw, err := f.ReadTensor("c.q4_0")
	require.NoError(t, err)
	ref := make([]byte, len(raw))
	_, err = QuantizeQ4_0(ref, data["c.q4_0"])
	require.NoError(t, err)
	assert.Equal(t, ref, raw)

	st, err := os.Stat(path)
	require.NoError(t, err)
	size, _ := w.Size()
	assert.Equal(t, size, st.Size())
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestWriterHeaderBytes(t *testing.T) {
	w := NewWriter()
	require.NoError(t, w.AddBool("b", true))
	require.NoError(t, w.AddTensor("t", TypeF32, []int64{2}, Float32Source(TypeF32, []int64{2}, []float32{1, -1})))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	b := buf.Bytes()
	le := binary.LittleEndian
	assert.Equal(t, "GGUF", string(b[:4]))
	assert.Equal(t, uint32(3), le.Uint32(b[4:]))
	assert.Equal(t, uint64(1), le.Uint64(b[8:]))  // n_tensors
	assert.Equal(t, uint64(1), le.Uint64(b[16:])) // n_kv
	assert.Equal(t, uint64(1), le.Uint64(b[24:])) // key length
	assert.Equal(t, "b", string(b[32:33]))
	assert.Equal(t, uint32(ValBool), le.Uint32(b[33:]))
	assert.Equal(t, byte(1), b[37])
	// tensor info: name, n_dims, ne, type, offset
	assert.Equal(t, uint64(1), le.Uint64(b[38:]))
	assert.Equal(t, "t", string(b[46:47]))
	assert.Equal(t, uint32(1), le.Uint32(b[47:]))
	assert.Equal(t, uint64(2), le.Uint64(b[51:]))
	assert.Equal(t, uint32(TypeF32), le.Uint32(b[59:]))
	assert.Equal(t, uint64(0), le.Uint64(b[63:]))
	// header is 71 bytes, padded to 96; data 8 bytes padded to 32
	require.Len(t, b, 128)
	assert.Equal(t, make([]byte, 96-71), b[71:96])
	assert.Equal(t, float32(1), math.Float32frombits(le.Uint32(b[96:])))
	assert.Equal(t, float32(-1), math.Float32frombits(le.Uint32(b[100:])))
}

func TestWriterValidation(t *testing.T) {
	src := BytesSource(make([]byte, 4))
	t.Run("duplicate key", func(t *testing.T) {
		w := NewWriter()
		require.NoError(t, w.AddUint32("k", 1))
		err := w.AddString("k", "x")
		assert.EqualError(t, err, `gguf: duplicate metadata key "k"`)
		_, werr := w.WriteTo(io.Discard)
		assert.Equal(t, err, werr, "first error is sticky")
		assert.Equal(t, err, w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")))
	})
	t.Run("empty key", func(t *testing.T) {
		assert.ErrorContains(t, NewWriter().AddBool("", true), "empty metadata key")
	})
	t.Run("bad alignment", func(t *testing.T) {
		assert.ErrorContains(t, NewWriter().SetAlignment(24), "not a power of two")
		assert.ErrorContains(t, NewWriter().AddInt32(KeyAlignment, 32), "must be a uint32")
		w := NewWriter()
		require.NoError(t, w.AddTensor("t", TypeF32, []int64{1}, src))
		assert.ErrorContains(t, w.SetAlignment(64), "before the first tensor")
	})
	t.Run("duplicate tensor", func(t *testing.T) {
		w := NewWriter()
		require.NoError(t, w.AddTensor("t", TypeF32, []int64{1}, src))
		assert.EqualError(t, w.AddTensor("t", TypeF32, []int64{1}, src), `gguf: duplicate tensor name "t"`)
	})
	t.Run("block size", func(t *testing.T) {
		err := NewWriter().AddTensor("w", TypeQ4_0, []int64{48, 2}, src)
		assert.EqualError(t, err, `tensor "w" (Q4_0, ne=[48 2]): gguf: row length ne[0]=48 is not a multiple of the Q4_0 block size 32`)
		err = NewWriter().AddTensor("w", TypeQ8_0, []int64{16}, src)
		assert.ErrorContains(t, err, "not a multiple of the Q8_0 block size 32")
	})
	t.Run("shapes", func(t *testing.T) {
		assert.ErrorContains(t, NewWriter().AddTensor("w", TypeF32, nil, src), "1..4 dimensions")
		assert.ErrorContains(t, NewWriter().AddTensor("w", TypeF32, []int64{1, 1, 1, 1, 1}, src), "1..4 dimensions")
		assert.ErrorContains(t, NewWriter().AddTensor("w", TypeF32, []int64{4, 0}, src), "ne[1]=0 must be >= 1")
	})
	t.Run("names and types", func(t *testing.T) {
		assert.ErrorContains(t, NewWriter().AddTensor("", TypeF32, []int64{1}, src), "empty tensor name")
		long := string(bytes.Repeat([]byte("x"), 64))
		assert.ErrorContains(t, NewWriter().AddTensor(long, TypeF32, []int64{1}, src), "at most 63")
		assert.ErrorContains(t, NewWriter().AddTensor("w", Type(14), []int64{256}, src), "unsupported type Q6_K")
		assert.ErrorContains(t, NewWriter().AddTensor("w", TypeF32, []int64{1}, nil), "nil data source")
	})
	t.Run("source size mismatch", func(t *testing.T) {
		w := NewWriter()
		require.NoError(t, w.AddTensor("short", TypeF32, []int64{2}, BytesSource(make([]byte, 4))))
		_, err := w.WriteTo(io.Discard)
		assert.EqualError(t, err, `gguf: tensor "short": source wrote 4 bytes, want 8`)
		w = NewWriter()
		require.NoError(t, w.AddTensor("long", TypeF32, []int64{1}, BytesSource(make([]byte, 8))))
		_, err = w.WriteTo(io.Discard)
		assert.ErrorContains(t, err, `tensor "long"`)
		assert.ErrorContains(t, err, "exceeds the declared tensor size")
	})
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	boom := errors.New("boom")
	w := NewWriter()
	require.NoError(t, w.AddTensor("a", TypeF32, []int64{1024}, func(w io.Writer) error {
		if _, err := w.Write(make([]byte, 1000)); err != nil {
			return err
		}
		return boom
	}))
	err := w.WriteFile(path)
	require.ErrorIs(t, err, boom)
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "neither the final nor a temporary file remains")

	// an existing good file is only replaced by a complete one
	good, _ := buildSample(t)
	require.NoError(t, good.WriteFile(path))
	before, _ := os.ReadFile(path)
	require.Error(t, w.WriteFile(path))
	after, _ := os.ReadFile(path)
	assert.Equal(t, sha256.Sum256(before), sha256.Sum256(after))
}

func TestChunkedSourceDeterministicAndOrdered(t *testing.T) {
	const size = 1<<20 + 12345
	fill := func(i int64, buf []byte) error {
		for j := range buf {
			buf[j] = byte((i*7919 + int64(j)*31) >> 3)
		}
		if i%3 == 0 {
			time.Sleep(time.Millisecond) // perturb completion order
		}
		return nil
	}
	var want []byte
	for _, workers := range []int{1, 2, 3, 8} {
		var buf bytes.Buffer
		require.NoError(t, ChunkedSource(size, 4096, workers, fill)(&buf))
		require.Equal(t, size, buf.Len())
		if want == nil {
			want = bytes.Clone(buf.Bytes())
			continue
		}
		assert.True(t, bytes.Equal(want, buf.Bytes()), "workers=%d", workers)
	}
	for j := 0; j < 3*4096; j += 1000 { // chunk i starts at i*4096
		i := int64(j / 4096)
		assert.Equal(t, byte((i*7919+int64(j%4096)*31)>>3), want[j])
	}
}

func TestChunkedSourceErrorsDoNotLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	boom := errors.New("boom")
	for k := 0; k < 20; k++ {
		err := ChunkedSource(1<<20, 1024, 4, func(i int64, buf []byte) error {
			if i == 37 {
				return boom
			}
			return nil
		})(io.Discard)
		require.ErrorIs(t, err, boom)
		err = ChunkedSource(1<<20, 1024, 4, func(i int64, buf []byte) error { return nil })(failAfter{n: 5000})
		require.Error(t, err)
	}
	time.Sleep(50 * time.Millisecond)
	assert.LessOrEqual(t, runtime.NumGoroutine(), before+2)
}

type failAfter struct{ n int }

func (f failAfter) Write(p []byte) (int, error) {
	return 0, errors.New("disk full")
}

func TestRowSourceMatchesFloat32Source(t *testing.T) {
	ne := []int64{64, 300}
	data := make([]float32, 64*300)
	for i := range data {
		data[i] = float32(math.Sin(float64(i)))
	}
	for _, typ := range []Type{TypeF32, TypeF16, TypeQ4_0, TypeQ8_0} {
		var a, b bytes.Buffer
		require.NoError(t, Float32Source(typ, ne, data)(&a))
		require.NoError(t, RowSource(typ, ne, 3, func(row int64, dst []float32) {
			copy(dst, data[row*64:])
		})(&b))
		size, _ := TensorSize(typ, ne)
		assert.Equal(t, int(size), a.Len())
		assert.True(t, bytes.Equal(a.Bytes(), b.Bytes()), typ.String())
	}
}

func TestReaderRejectsBadFiles(t *testing.T) {
	w, _ := buildSample(t)
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	good := buf.Bytes()

	bad := bytes.Clone(good)
	copy(bad, "GGUX")
	_, err = Decode(bytes.NewReader(bad))
	assert.ErrorContains(t, err, "bad magic")

	_, err = Decode(bytes.NewReader(good[:100]))
	assert.Error(t, err)

	path := filepath.Join(t.TempDir(), "trunc.gguf")
	require.NoError(t, os.WriteFile(path, good[:len(good)-40], 0o644))
	_, err = Open(path)
	assert.ErrorContains(t, err, "beyond the file size")
}
