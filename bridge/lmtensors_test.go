package bridge_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// setTensorType rewrites the type of tensor name in a GGUF file's header:
// a type of the same element size keeps the layout valid.
func setTensorType(t *testing.T, b []byte, name string, typ uint32) []byte {
	t.Helper()
	var pre [8]byte
	binary.LittleEndian.PutUint64(pre[:], uint64(len(name)))
	i := bytes.Index(b, append(pre[:], name...))
	require.GreaterOrEqual(t, i, 0, name)
	p := i + 8 + len(name)
	nd := int(binary.LittleEndian.Uint32(b[p:]))
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c[p+4+8*nd:], typ)
	return c
}

// Tensor types llama.cpp's CPU kernels crash on (SIGSEGV in the matrix
// product, GGML_ABORT in binary_op, GGML_ASSERT in the scheduler) are
// refused by name before llama.cpp loads the file.
func TestLoadModelRefusesUnusableTensorTypes(t *testing.T) {
	lm, _ := fixture.Pair(t, "tiny")
	b, err := os.ReadFile(lm)
	require.NoError(t, err)
	dir := t.TempDir()
	for _, tc := range []struct {
		tensor string
		typ    uint32
		want   string
	}{
		{"blk.0.attn_q.weight", 26, "tensor blk.0.attn_q.weight has type I32, which llama.cpp cannot use as a weight matrix"},
		{"blk.1.ffn_down.weight", 26, "tensor blk.1.ffn_down.weight has type I32"},
		{"token_embd.weight", 26, "tensor token_embd.weight has type I32"},
		{"output.weight", 26, "tensor output.weight has type I32"},
		{"output_norm.weight", 26, "tensor output_norm.weight has type I32; llama.cpp's kernels need F32 for a 1-D weight"},
		{"blk.0.attn_norm.weight", 26, "tensor blk.0.attn_norm.weight has type I32"},
	} {
		p := filepath.Join(dir, tc.tensor+".gguf")
		require.NoError(t, os.WriteFile(p, setTensorType(t, b, tc.tensor, tc.typ), 0o644))
		_, err := bridge.LoadModel(p, bridge.ModelParams{})
		require.ErrorIs(t, err, bridge.ErrFormat, tc.tensor)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), p)
	}
	// The project's own models pass: the generated tiny LM and the trained
	// testbed model.
	for _, p := range []string{lm, filepath.Join("..", "tests", "testbed", "model", "lm.gguf")} {
		m, err := bridge.LoadModel(p, bridge.ModelParams{VocabOnly: true})
		require.NoError(t, err, p)
		m.Close()
	}
}
