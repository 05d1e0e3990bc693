package bridge_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// When llama.cpp refuses a model, LoadModel's error carries its reason
// (logged by llama.cpp, formerly "see log above").
func TestLoadModelSaysWhyLlamaCppRefused(t *testing.T) {
	lm, _ := fixture.Pair(t, "tiny")
	b, err := os.ReadFile(lm)
	require.NoError(t, err)
	dir := t.TempDir()
	// Renaming a tensor in place keeps the layout: only llama.cpp's own
	// tensor lookup notices.
	missing := bytes.Replace(b, []byte("blk.1.attn_q.weight"), []byte("blk.1.attn_q.weighX"), 1)
	p := filepath.Join(dir, "missing.gguf")
	require.NoError(t, os.WriteFile(p, missing, 0o644))
	_, err = bridge.LoadModel(p, bridge.ModelParams{})
	require.ErrorIs(t, err, bridge.ErrFormat)
	assert.Contains(t, err.Error(), "llama.cpp could not load "+p+": missing tensor 'blk.1.attn_q.weight'")
	assert.NotContains(t, err.Error(), "see log above")

	// A model that loads afterwards is unaffected by the capture.
	m, err := bridge.LoadModel(lm, bridge.ModelParams{VocabOnly: true})
	require.NoError(t, err)
	m.Close()
}
