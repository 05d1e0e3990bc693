// Package fsutil holds the file checks every input and output path goes
// through: inputs must be regular files (opening a named pipe or a device
// blocks or never ends), and outputs must never replace an input.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotRegular means a path names something other than a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrIsInput means an output path names one of the inputs.
var ErrIsInput = errors.New("would overwrite an input file")

// CheckInput returns nil when path is a regular file (after following
// symbolic links), an *fs.PathError when it cannot be stat'ed, and an error
// wrapping ErrNotRegular naming what it is otherwise. It never opens the
// path, so a FIFO cannot block it.
func CheckInput(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is %s, %w", path, kind(st.Mode()), ErrNotRegular)
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file"
}

// SamePath reports whether a and b name the same file: the same file on
// disk when both exist (hard and symbolic links included), else the same
// cleaned absolute path.
func SamePath(a, b string) bool {
	sa, ea := os.Stat(a)
	sb, eb := os.Stat(b)
	if ea == nil && eb == nil {
		return os.SameFile(sa, sb)
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// CheckOutput checks, without creating or changing anything, that path can
// be written as a new or replaced regular file and that it is none of the
// inputs: its folder exists and accepts new files, and an existing file at
// path is a writable regular file.
func CheckOutput(path string, inputs ...string) error {
	for _, in := range inputs {
		if in != "" && SamePath(path, in) {
			return fmt.Errorf("%s names the input %s: %w", path, in, ErrIsInput)
		}
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is %s, %w", path, kind(st.Mode()), ErrNotRegular)
		}
		// Opening for writing without O_TRUNC or O_CREATE changes nothing.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The folder must accept a new file: try one and remove it.
	f, err := os.CreateTemp(dir, ".hiprune-check-*")
	if err != nil {
		return fmt.Errorf("%s: cannot create files in %s: %w", path, dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
