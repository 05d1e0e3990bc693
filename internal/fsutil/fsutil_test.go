package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	link := filepath.Join(dir, "l")
	require.NoError(t, os.Symlink(file, link))
	assert.NoError(t, CheckInput(file))
	assert.NoError(t, CheckInput(link), "a symlink to a file is a file")

	err := CheckInput(dir)
	assert.ErrorIs(t, err, ErrNotRegular)
	assert.Contains(t, err.Error(), "directory")
	assert.ErrorIs(t, CheckInput(filepath.Join(dir, "missing")), os.ErrNotExist)
	fifo := filepath.Join(dir, "p")
	if syscall.Mkfifo(fifo, 0o644) == nil {
		err := CheckInput(fifo)
		assert.ErrorIs(t, err, ErrNotRegular)
		assert.Contains(t, err.Error(), "named pipe")
	}
}

func TestSamePathAndCheckOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.png")
	require.NoError(t, os.WriteFile(in, []byte("img"), 0o644))
	hard := filepath.Join(dir, "hard.png")
	require.NoError(t, os.Link(in, hard))
	soft := filepath.Join(dir, "soft.png")
	require.NoError(t, os.Symlink(in, soft))
	other := filepath.Join(dir, "other.png")
	require.NoError(t, os.WriteFile(other, []byte("img"), 0o644))

	assert.True(t, SamePath(in, hard))
	assert.True(t, SamePath(soft, in))
	assert.True(t, SamePath(dir+"/x/../in.png", in), "lexically equal when a part is missing")
	assert.False(t, SamePath(other, in), "same bytes, another file")

	for _, out := range []string{in, hard, soft} {
		assert.ErrorIs(t, CheckOutput(out, "", in), ErrIsInput, out)
	}
	assert.NoError(t, CheckOutput(other, in), "an existing output that is no input may be replaced")
	assert.NoError(t, CheckOutput(filepath.Join(dir, "new.png"), in))
	assert.Error(t, CheckOutput(filepath.Join(dir, "nope", "m.png")))
	assert.ErrorIs(t, CheckOutput(dir, in), ErrNotRegular)
	b, err := os.ReadFile(in)
	require.NoError(t, err)
	assert.Equal(t, "img", string(b), "checks change nothing")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "no probe file left")
}
