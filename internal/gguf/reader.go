package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// KV is one decoded metadata entry. Value holds uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool or string for scalars;
// for arrays Type is ValArray, ElemType the element type and Value a slice
// of the matching Go type ([]string, []float32, []int32, ...).
type KV struct {
	Key      string
	Type     ValueType
	ElemType ValueType
	Value    any
}

// File is a decoded GGUF header. Tensor data is read through Open's file.
type File struct {
	Version    uint32
	KV         []KV
	Tensors    []TensorInfo
	Alignment  int64
	DataOffset int64 // absolute file offset of the data section

	r io.ReaderAt
	c io.Closer
}

// Get returns the entry for key.
func (f *File) Get(key string) (KV, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv, true
		}
	}
	return KV{}, false
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// reader decodes the header. size is the input's length when known (-1
// otherwise): every length read from the file is checked against the bytes
// left, so a corrupted length is refused with its offset and the limit
// instead of allocating what it claims.
type reader struct {
	r    *bufio.Reader
	n    int64
	size int64
	err  error
}

// smallRead is the largest string read with one allocation up front;
// longer ones grow with the data actually present.
const smallRead = 1 << 16

func (r *reader) read(p []byte) {
	if r.err != nil {
		return
	}
	n, err := io.ReadFull(r.r, p)
	r.n += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = r.eof(int64(len(p)))
	}
	r.err = err
}

// eof describes a read of want bytes that ran past the end of the input.
func (r *reader) eof(want int64) error {
	if r.size >= 0 {
		return fmt.Errorf("%w: needed %d bytes at byte %d, the file has %d", io.ErrUnexpectedEOF, want, r.n, r.size)
	}
	return fmt.Errorf("%w at byte %d", io.ErrUnexpectedEOF, r.n)
}

// fits checks, when the input size is known, that n items of at least
// unit bytes each can follow; what names the length in the error ("string
// length", "array of str: length") and at is where the length was read.
func (r *reader) fits(n, unit uint64, what string, at int64) bool {
	if r.err != nil {
		return false
	}
	if r.size < 0 {
		return true
	}
	left := uint64(max(r.size-r.n, 0))
	if unit == 0 || n <= left/unit {
		return true
	}
	// Either the file was cut short or the length itself is corrupt: the
	// header cannot tell which, so the message says both.
	if unit == 1 {
		r.err = fmt.Errorf("%s %d at byte %d runs past the end of the file (%d bytes left of %d): truncated file or corrupt length",
			what, n, at, left, r.size)
	} else {
		r.err = fmt.Errorf("%s %d at byte %d needs at least %d bytes, the file has %d left (of %d): truncated file or corrupt length",
			what, n, at, satMul(n, unit), left, r.size)
	}
	return false
}

func satMul(a, b uint64) uint64 {
	if b != 0 && a > math.MaxUint64/b {
		return math.MaxUint64
	}
	return a * b
}

func (r *reader) u8() uint8   { var b [1]byte; r.read(b[:]); return b[0] }
func (r *reader) u16() uint16 { var b [2]byte; r.read(b[:]); return binary.LittleEndian.Uint16(b[:]) }
func (r *reader) u32() uint32 { var b [4]byte; r.read(b[:]); return binary.LittleEndian.Uint32(b[:]) }
func (r *reader) u64() uint64 { var b [8]byte; r.read(b[:]); return binary.LittleEndian.Uint64(b[:]) }

// maxString bounds a string when the input size is unknown.
const maxString = 1 << 30

func (r *reader) str() string {
	n := r.u64()
	if !r.fits(n, 1, "string length", r.n-8) {
		return ""
	}
	if n > maxString {
		r.err = fmt.Errorf("string length %d at byte %d is over the limit of %d bytes", n, r.n-8, maxString)
		return ""
	}
	if n <= smallRead {
		b := make([]byte, n)
		r.read(b)
		return string(b)
	}
	var b strings.Builder
	got, err := io.CopyN(&b, r.r, int64(n))
	r.n += got
	if err != nil {
		if err == io.EOF {
			err = r.eof(int64(n) - got)
		}
		r.err = err
		return ""
	}
	return b.String()
}

func (r *reader) scalar(t ValueType) any {
	switch t {
	case ValUint8:
		return r.u8()
	case ValInt8:
		return int8(r.u8())
	case ValUint16:
		return r.u16()
	case ValInt16:
		return int16(r.u16())
	case ValUint32:
		return r.u32()
	case ValInt32:
		return int32(r.u32())
	case ValUint64:
		return r.u64()
	case ValInt64:
		return int64(r.u64())
	case ValFloat32:
		return math.Float32frombits(r.u32())
	case ValFloat64:
		return math.Float64frombits(r.u64())
	case ValBool:
		return r.u8() != 0
	case ValString:
		return r.str()
	}
	if r.err == nil {
		r.err = fmt.Errorf("invalid value type %d (valid: 0..%d)", uint32(t), uint32(ValFloat64))
	}
	return nil
}

func readArray[T any](r *reader, n uint64, et ValueType) []T {
	out := make([]T, 0, min(n, 1<<16))
	for i := uint64(0); i < n && r.err == nil; i++ {
		v, _ := r.scalar(et).(T)
		out = append(out, v)
	}
	return out
}

func (r *reader) array() (ValueType, any) {
	et := ValueType(r.u32())
	n := r.u64()
	if r.err != nil {
		return et, nil
	}
	// The smallest element: a string is at least its 8-byte length.
	unit := uint64(et.fixedSize())
	if et == ValString {
		unit = 8
	}
	if unit != 0 && !r.fits(n, unit, fmt.Sprintf("array of %v: length", et), r.n-8) {
		return et, nil
	}
	switch et {
	case ValUint8:
		return et, readArray[uint8](r, n, et)
	case ValInt8:
		return et, readArray[int8](r, n, et)
	case ValUint16:
		return et, readArray[uint16](r, n, et)
	case ValInt16:
		return et, readArray[int16](r, n, et)
	case ValUint32:
		return et, readArray[uint32](r, n, et)
	case ValInt32:
		return et, readArray[int32](r, n, et)
	case ValUint64:
		return et, readArray[uint64](r, n, et)
	case ValInt64:
		return et, readArray[int64](r, n, et)
	case ValFloat32:
		return et, readArray[float32](r, n, et)
	case ValFloat64:
		return et, readArray[float64](r, n, et)
	case ValBool:
		return et, readArray[bool](r, n, et)
	case ValString:
		return et, readArray[string](r, n, et)
	}
	r.err = fmt.Errorf("invalid array element type %d (valid: 0..%d, arrays of arrays unsupported)", uint32(et), uint32(ValFloat64))
	return et, nil
}

// Decode reads a GGUF header (metadata and tensor infos) from r, checking it
// the way ggml's gguf_init_from_file does: magic, version, unique keys and
// tensor names, name length, dimensions, block-size multiple and contiguous
// aligned offsets. It does not read tensor data. Memory use is bounded by
// the bytes actually read, whatever lengths the header claims.
func Decode(r io.Reader) (*File, error) {
	return decode(r, -1)
}

// decode is Decode with the input size when known (-1 otherwise), so that
// lengths are checked against it.
func decode(r io.Reader, size int64) (*File, error) {
	rd := &reader{r: bufio.NewReaderSize(r, 1<<16), size: size}
	var magic [4]byte
	rd.read(magic[:])
	if rd.err != nil {
		return nil, fmt.Errorf("gguf: reading magic: %w", rd.err)
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("gguf: bad magic %q (want %q)", magic[:], Magic)
	}
	f := &File{Alignment: DefaultAlignment}
	f.Version = rd.u32()
	nt := rd.u64()
	nkv := rd.u64()
	if rd.err != nil {
		return nil, fmt.Errorf("gguf: reading header: %w", rd.err)
	}
	if f.Version < 2 || f.Version > Version {
		return nil, fmt.Errorf("gguf: unsupported version %d (want 2..%d)", f.Version, Version)
	}
	if nt > maxCount || nkv > maxCount {
		return nil, fmt.Errorf("gguf: implausible counts: %d tensors, %d keys (limit %d each)", nt, nkv, maxCount)
	}
	// A key is at least a length, a type and one byte; a tensor info at
	// least a name length, n_dims, one dimension, a type and an offset.
	if !rd.fits(nkv, 8+4+1, "key count", 16) || !rd.fits(nt, 8+4+8+4+8, "tensor count", 8) {
		return nil, fmt.Errorf("gguf: header: %w", rd.err)
	}
	seen := map[string]bool{}
	prev := "" // the last key read, to place a bad one
	for i := uint64(0); i < nkv; i++ {
		k := KV{Key: rd.str()}
		k.Type = ValueType(rd.u32())
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading key %d of %d%s: %w", i, nkv, after(prev), rd.err)
		}
		if k.Type == ValArray {
			k.ElemType, k.Value = rd.array()
		} else {
			k.Value = rd.scalar(k.Type)
		}
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading value of key %q: %w", k.Key, rd.err)
		}
		if seen[k.Key] {
			return nil, fmt.Errorf("gguf: duplicate key %q", k.Key)
		}
		seen[k.Key] = true
		if k.Key == KeyAlignment {
			a, ok := k.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("gguf: bad %s %v (%v): want a power of two of type u32", KeyAlignment, k.Value, k.Type)
			}
			f.Alignment = int64(a)
		}
		f.KV = append(f.KV, k)
		prev = k.Key
	}
	names := map[string]bool{}
	var expect int64
	prev = ""
	for i := uint64(0); i < nt; i++ {
		t := TensorInfo{Name: rd.str()}
		nd := rd.u32()
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading tensor %d of %d%s: %w", i, nt, after(prev), rd.err)
		}
		if len(t.Name) > MaxNameLen {
			return nil, fmt.Errorf("gguf: tensor %d name %q is %d bytes, over the limit of %d", i, trunc(t.Name), len(t.Name), MaxNameLen)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		if nd < 1 || nd > MaxDims {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions (want 1..%d)", t.Name, nd, MaxDims)
		}
		for range nd {
			t.Ne = append(t.Ne, int64(rd.u64()))
		}
		t.Type = Type(rd.u32())
		t.Offset = int64(rd.u64())
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading tensor %q: %w", t.Name, rd.err)
		}
		size, err := DataSize(t.Type, t.Ne)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		t.Size = size
		if t.Offset != expect {
			// The expected offset follows from the sizes and the alignment:
			// say which alignment, a corrupted general.alignment shows here.
			return nil, fmt.Errorf("gguf: tensor %q has offset %d, expected %d (the tensors before it, each padded to %s = %d bytes)",
				t.Name, t.Offset, expect, KeyAlignment, f.Alignment)
		}
		if size > math.MaxInt64-expect-f.Alignment {
			return nil, fmt.Errorf("gguf: tensor %q: data section overflows", t.Name)
		}
		expect += alignUp(size, f.Alignment)
		f.Tensors = append(f.Tensors, t)
		prev = t.Name
	}
	f.DataOffset = alignUp(rd.n, f.Alignment)
	return f, nil
}

// maxCount bounds the key and tensor counts (ggml's own bound is memory).
const maxCount = 1 << 24

func after(prev string) string {
	if prev == "" {
		return ""
	}
	return fmt.Sprintf(" (after %q)", prev)
}

// trunc shortens a corrupted name for a message.
func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Open decodes the header of the file at path and keeps it open for
// ReadTensor. It checks that every tensor lies within the file.
func Open(path string) (*File, error) {
	// Stat before opening: opening a FIFO for reading blocks until a writer
	// comes, and a device may never end.
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	f, err := OpenReaderAt(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.c = fh
	return f, nil
}

// OpenReaderAt decodes the header of the size bytes of r and checks that
// every tensor lies within them; ReadTensor then reads from r.
func OpenReaderAt(r io.ReaderAt, size int64) (*File, error) {
	f, err := decode(io.NewSectionReader(r, 0, size), size)
	if err != nil {
		return nil, err
	}
	for _, t := range f.Tensors {
		if end := f.DataOffset + t.Offset + t.Size; end > size || end < 0 {
			return nil, fmt.Errorf("gguf: tensor %q ends at %d, beyond the file size %d", t.Name, end, size)
		}
	}
	f.r = r
	return f, nil
}

// Close closes the file opened by Open.
func (f *File) Close() error {
	f.r = nil
	if f.c == nil {
		return nil
	}
	err := f.c.Close()
	f.c = nil
	return err
}

// ReadTensor returns the raw data of the named tensor.
func (f *File) ReadTensor(name string) ([]byte, error) {
	if f.r == nil {
		return nil, errors.New("gguf: file not open")
	}
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	b := make([]byte, t.Size)
	if _, err := f.r.ReadAt(b, f.DataOffset+t.Offset); err != nil {
		return nil, fmt.Errorf("gguf: reading tensor %q: %w", name, err)
	}
	return b, nil
}

// ReadTensorFloat32 returns the named tensor decoded to float32.
func (f *File) ReadTensorFloat32(name string) ([]float32, error) {
	b, err := f.ReadTensor(name)
	if err != nil {
		return nil, err
	}
	t, _ := f.Tensor(name)
	rowBytes, err := t.Type.RowSize(t.Ne[0])
	if err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	n := int64(1)
	for _, x := range t.Ne {
		n *= x
	}
	out := make([]float32, n)
	for r := int64(0); r < n/t.Ne[0]; r++ {
		if err := DecodeRow(t.Type, out[r*t.Ne[0]:(r+1)*t.Ne[0]], b[r*rowBytes:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
