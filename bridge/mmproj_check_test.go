package bridge_test

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// valueOffset is where the value of key starts in a GGUF header (after its
// 4-byte type).
func valueOffset(t *testing.T, b []byte, key string) int {
	t.Helper()
	var pre [8]byte
	binary.LittleEndian.PutUint64(pre[:], uint64(len(key)))
	i := bytes.Index(b, append(pre[:], key...))
	require.GreaterOrEqual(t, i, 0, key)
	return i + 8 + len(key) + 4
}

// Projector errors name the file, the key or tensor and the limit
// (issue 16 item 5), where ggml said "basic_string::_M_replace_aux" or
// blamed another tensor.
func TestOpenEncoderNamesTheProblem(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	b, err := os.ReadFile(mm)
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	patch := func(off int, v uint64, size int) []byte {
		c := bytes.Clone(b)
		if size == 4 {
			binary.LittleEndian.PutUint32(c[off:], uint32(v))
		} else {
			binary.LittleEndian.PutUint64(c[off:], v)
		}
		return c
	}
	name := valueOffset(t, b, "general.name") // a string: its u64 length
	arr := valueOffset(t, b, "clip.vision.image_mean") + 4
	for _, tc := range []struct {
		name string
		data []byte
		kind error
		want []string
	}{
		{"string length past the end", patch(name, uint64(len(b)), 8), bridge.ErrFormat,
			[]string{`key "general.name"`, "string length", "runs past the end of the file", "truncated"}},
		{"string length 2^63", patch(name, 1<<63, 8), bridge.ErrFormat,
			[]string{`key "general.name"`, "string length 9223372036854775808"}},
		{"array length", patch(arr, 1<<40, 8), bridge.ErrFormat,
			[]string{`key "clip.vision.image_mean"`, "array of f32: length 1099511627776", "needs at least 4398046511104 bytes"}},
		{"huge block count", patch(valueOffset(t, b, "clip.vision.block_count"), 1<<31, 4), bridge.ErrFormat,
			[]string{"clip.vision.block_count = 2147483648 is out of range (1..1024)"}},
		{"block count past the stored blocks", patch(valueOffset(t, b, "clip.vision.block_count"), 14, 4), bridge.ErrFormat,
			[]string{"runs 14 blocks (clip.vision.block_count 14) but the file stores 12 (no tensor v.blk.12.attn_q.weight)"}},
		{"huge image size", patch(valueOffset(t, b, "clip.vision.image_size"), 1<<32-1, 4), bridge.ErrFormat,
			[]string{"clip.vision.image_size = 4294967295 is out of range (1..8192)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write("m.gguf", tc.data)
			_, err := bridge.OpenEncoder(p, bridge.EncoderParams{})
			require.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), p)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "basic_string")
		})
	}

	t.Run("no class embedding", func(t *testing.T) {
		p := fixture.Mutate(t, mm, dir, "nocls.gguf", fixture.Edit{Drop: []string{"v.class_embd"}})
		_, err := bridge.OpenEncoder(p, bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrFormat)
		assert.Contains(t, err.Error(), "missing tensor v.class_embd: v.position_embd.weight has 577 positions, the 576 patches and a class token")
	})
	t.Run("image mean not finite", func(t *testing.T) {
		p := fixture.Mutate(t, mm, dir, "mean.gguf", fixture.Edit{Set: map[string]any{"clip.vision.image_mean": []float32{0.5, float32(math.NaN()), 0.5}}})
		_, err := bridge.OpenEncoder(p, bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrFormat)
		assert.Contains(t, err.Error(), "clip.vision.image_mean[1] = nan, want a finite value")
	})
	t.Run("fifo", func(t *testing.T) {
		p := filepath.Join(dir, "fifo.gguf")
		require.NoError(t, syscall.Mkfifo(p, 0o600))
		_, err := bridge.OpenEncoder(p, bridge.EncoderParams{}) // would block in open(2)
		require.ErrorIs(t, err, bridge.ErrIO)
		assert.Contains(t, err.Error(), "is not a regular file")
	})
	t.Run("directory", func(t *testing.T) {
		_, err := bridge.OpenEncoder(dir, bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrIO)
		assert.Contains(t, err.Error(), "is a directory")
	})
	t.Run("missing", func(t *testing.T) {
		_, err := bridge.OpenEncoder(filepath.Join(dir, "nope.gguf"), bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrIO)
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("short file", func(t *testing.T) {
		p := write("short.gguf", []byte("GG"))
		_, err := bridge.OpenEncoder(p, bridge.EncoderParams{})
		require.ErrorIs(t, err, bridge.ErrFormat)
		assert.Contains(t, err.Error(), "is not a GGUF file (the file has 2 bytes, too short for a header)")
	})
}
