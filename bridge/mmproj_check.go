package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// checkProjectorFile reads an mmproj's GGUF header in Go before the C++
// loader sees it. ggml's gguf_init_from_file sizes a string from its length
// field before reading it (a corrupted length throws std::length_error,
// "basic_string::_M_replace_aux", or allocates what it claims), aborts on a
// general.alignment of the wrong type, and only says "failed to read" for
// the rest; here every length is bounded by the bytes left in the file and
// the message names the key or tensor, the offset and the limit.
func checkProjectorFile(path string) error {
	// Stat first: opening a FIFO for reading blocks until a writer comes.
	st, err := os.Stat(path)
	if err != nil {
		return classErr{ErrIO, err}
	}
	if st.IsDir() {
		return classErr{ErrIO, fmt.Errorf("%s is a directory, not a GGUF file", path)}
	}
	if !st.Mode().IsRegular() {
		return classErr{ErrIO, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())}
	}
	fh, err := os.Open(path)
	if err != nil {
		return classErr{ErrIO, err}
	}
	var magic [4]byte
	_, err = io.ReadFull(fh, magic[:])
	fh.Close()
	if err != nil || !bytes.Equal(magic[:], []byte(gguf.Magic)) {
		return classErr{ErrFormat, fmt.Errorf("%s is not a GGUF file (%s)", path, describeMagic(magic[:], err, st.Size()))}
	}
	f, err := gguf.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return classErr{ErrIO, err}
		}
		return classErr{ErrFormat, fmt.Errorf("%s: truncated or corrupt GGUF file: %w", path, err)}
	}
	return f.Close()
}

// classErr is err, classed as kind (ErrIO, ErrFormat) for errors.Is
// without adding kind's text to the message.
type classErr struct{ kind, err error }

func (e classErr) Error() string   { return e.err.Error() }
func (e classErr) Unwrap() []error { return []error{e.kind, e.err} }

func describeMagic(b []byte, err error, size int64) string {
	if err != nil {
		return fmt.Sprintf("the file has %d bytes, too short for a header", size)
	}
	return fmt.Sprintf("starts with %q, want %q", b, gguf.Magic)
}
