package gguf

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleBytes is buildSample's file.
func sampleBytes(t testing.TB) []byte {
	w, _ := buildSample(t)
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// keyOffset is the offset of the u64 length of key's name in b.
func keyOffset(t *testing.T, b []byte, key string) int {
	t.Helper()
	var pre [8]byte
	binary.LittleEndian.PutUint64(pre[:], uint64(len(key)))
	i := bytes.Index(b, append(pre[:], key...))
	require.GreaterOrEqual(t, i, 0, key)
	return i
}

func openBytes(b []byte) (*File, error) { return OpenReaderAt(bytes.NewReader(b), int64(len(b))) }

func TestReaderLengthsBoundedByFileSize(t *testing.T) {
	good := sampleBytes(t)
	put := func(off int, v uint64) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	name := keyOffset(t, good, "general.architecture")
	val := name + 8 + len("general.architecture") + 4 // the value's string length
	arr := keyOffset(t, good, "tokenizer.ggml.tokens") + 8 + len("tokenizer.ggml.tokens") + 4 + 4

	for _, tc := range []struct {
		name string
		b    []byte
		want []string
	}{
		// The value of a key: the message names the key, the offset and the size.
		{"value length past the end", put(val, uint64(len(good))), []string{`key "general.architecture"`, "string length", "runs past the end of the file", "bytes left of"}},
		{"value length 2^63", put(val, 1<<63), []string{`key "general.architecture"`, "string length 9223372036854775808"}},
		{"key name length", put(name, 1<<40), []string{"reading key 0 of", "string length 1099511627776 at byte 24 runs past the end of the file"}},
		{"array length", put(arr, 1<<40), []string{`key "tokenizer.ggml.tokens"`, "array of str: length 1099511627776", "needs at least"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openBytes(tc.b)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
			// Without a known size, lengths are refused or read as far as
			// the data goes, never allocated up front.
			_, err = Decode(bytes.NewReader(tc.b))
			assert.Error(t, err)
		})
	}
}

func TestReaderCounts(t *testing.T) {
	good := sampleBytes(t)
	for _, off := range []int{8, 16} { // tensor count, key count
		for _, v := range []uint64{1 << 20, 1 << 24, 1 << 40, 1 << 63} {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b[off:], v)
			_, err := openBytes(b)
			assert.Error(t, err, "offset %d = %d", off, v)
		}
	}
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint32(b[4:], 4)
	_, err := openBytes(b)
	assert.ErrorContains(t, err, "unsupported version 4 (want 2..3)")
}

func TestDataSizeAllGGMLTypes(t *testing.T) {
	// A Q4_K_M model holds Q4_K and Q6_K tensors: the reader must size them.
	for _, tc := range []struct {
		typ  Type
		ne   []int64
		want int64
	}{
		{12, []int64{256, 2}, 2 * 144}, // Q4_K
		{14, []int64{512}, 2 * 210},    // Q6_K
		{30, []int64{3, 5}, 30},        // BF16
		{39, []int64{64}, 2 * 17},      // MXFP4
	} {
		got, err := DataSize(tc.typ, tc.ne)
		require.NoError(t, err, tc.typ.String())
		assert.Equal(t, tc.want, got, tc.typ.String())
	}
	for _, tc := range []struct {
		typ  Type
		ne   []int64
		want string
	}{
		{4, []int64{32}, "removed ggml type 4"},
		{40, []int64{32}, "invalid or removed ggml type 40"},
		{12, []int64{100}, "not a multiple of the Q4_K block size 256"},
		{0, []int64{0}, "ne[0]=0"},
		{0, []int64{1 << 62}, "too large"},
		{0, []int64{1 << 31, 1 << 31, 4}, "too large"},
	} {
		_, err := DataSize(tc.typ, tc.ne)
		assert.ErrorContains(t, err, tc.want)
	}
	assert.Equal(t, "Q4_K", Type(12).String())
	assert.Equal(t, "ggml_type(4)", Type(4).String())
}

func TestOpenQuantizedTypesItCannotDecode(t *testing.T) {
	// Written by hand: the writer only encodes F32/F16/Q4_0/Q8_0.
	good := sampleBytes(t)
	f, err := openBytes(good)
	require.NoError(t, err)
	ti, _ := f.Tensor("d.q8_0") // 4 x 32 x 2 x 2 Q8_0 = 272 bytes
	// Re-declare it as Q4_K [256, 1]: 144 bytes, fits in the same place.
	b := bytes.Clone(good)
	name := keyOffset(t, b, "d.q8_0")
	p := name + 8 + len("d.q8_0")
	require.Equal(t, uint32(4), binary.LittleEndian.Uint32(b[p:]))
	binary.LittleEndian.PutUint32(b[p:], 2) // n_dims 4 -> 2: shifts the rest by 16 bytes
	binary.LittleEndian.PutUint64(b[p+4:], 256)
	binary.LittleEndian.PutUint64(b[p+12:], 1)
	binary.LittleEndian.PutUint32(b[p+20:], 12)
	binary.LittleEndian.PutUint64(b[p+24:], uint64(ti.Offset))
	// the two dropped dims leave 16 bytes before the (aligned) data section:
	// pad them instead of moving the data.
	copy(b[p+32:], make([]byte, 16))
	g, err := openBytes(b)
	require.NoError(t, err)
	q, _ := g.Tensor("d.q8_0")
	assert.Equal(t, Type(12), q.Type)
	assert.Equal(t, int64(144), q.Size)
	raw, err := g.ReadTensor("d.q8_0")
	require.NoError(t, err)
	assert.Len(t, raw, 144)
	_, err = g.ReadTensorFloat32("d.q8_0")
	assert.ErrorContains(t, err, "unsupported tensor type Q4_K")
}

func TestOpenRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir)
	assert.ErrorContains(t, err, "is not a regular file")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err = Open(fifo) // would block in os.Open
	assert.ErrorContains(t, err, "is not a regular file")
	_, err = Open(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
