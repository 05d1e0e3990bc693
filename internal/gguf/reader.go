package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
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

	f *os.File
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

type reader struct {
	r   *bufio.Reader
	n   int64
	err error
}

func (r *reader) read(p []byte) {
	if r.err != nil {
		return
	}
	n, err := io.ReadFull(r.r, p)
	r.n += int64(n)
	r.err = err
}

func (r *reader) u8() uint8   { var b [1]byte; r.read(b[:]); return b[0] }
func (r *reader) u16() uint16 { var b [2]byte; r.read(b[:]); return binary.LittleEndian.Uint16(b[:]) }
func (r *reader) u32() uint32 { var b [4]byte; r.read(b[:]); return binary.LittleEndian.Uint32(b[:]) }
func (r *reader) u64() uint64 { var b [8]byte; r.read(b[:]); return binary.LittleEndian.Uint64(b[:]) }

func (r *reader) str() string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > 1<<30 {
		r.err = fmt.Errorf("string length %d too large", n)
		return ""
	}
	b := make([]byte, n)
	r.read(b)
	return string(b)
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
		r.err = fmt.Errorf("invalid value type %d", uint32(t))
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
	r.err = fmt.Errorf("invalid array element type %d", uint32(et))
	return et, nil
}

// Decode reads a GGUF header (metadata and tensor infos) from r, checking it
// the way ggml's gguf_init_from_file does: magic, version, unique keys and
// tensor names, name length, dimensions, block-size multiple and contiguous
// aligned offsets. It does not read tensor data.
func Decode(r io.Reader) (*File, error) {
	rd := &reader{r: bufio.NewReaderSize(r, 1<<16)}
	var magic [4]byte
	rd.read(magic[:])
	if rd.err != nil {
		return nil, fmt.Errorf("gguf: reading magic: %w", rd.err)
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("gguf: bad magic %q", magic[:])
	}
	f := &File{Alignment: DefaultAlignment}
	f.Version = rd.u32()
	nt := rd.u64()
	nkv := rd.u64()
	if rd.err != nil {
		return nil, fmt.Errorf("gguf: reading header: %w", rd.err)
	}
	if f.Version < 2 || f.Version > Version {
		return nil, fmt.Errorf("gguf: unsupported version %d", f.Version)
	}
	if nt > 1<<24 || nkv > 1<<24 {
		return nil, fmt.Errorf("gguf: implausible counts: %d tensors, %d keys", nt, nkv)
	}
	seen := map[string]bool{}
	for i := uint64(0); i < nkv; i++ {
		k := KV{Key: rd.str()}
		k.Type = ValueType(rd.u32())
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading key %d: %w", i, rd.err)
		}
		if k.Type == ValArray {
			k.ElemType, k.Value = rd.array()
		} else {
			k.Value = rd.scalar(k.Type)
		}
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading value of %q: %w", k.Key, rd.err)
		}
		if seen[k.Key] {
			return nil, fmt.Errorf("gguf: duplicate key %q", k.Key)
		}
		seen[k.Key] = true
		if k.Key == KeyAlignment {
			a, ok := k.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("gguf: bad %s %v (%v)", KeyAlignment, k.Value, k.Type)
			}
			f.Alignment = int64(a)
		}
		f.KV = append(f.KV, k)
	}
	names := map[string]bool{}
	var expect int64
	for i := uint64(0); i < nt; i++ {
		t := TensorInfo{Name: rd.str()}
		nd := rd.u32()
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading tensor %d: %w", i, rd.err)
		}
		if len(t.Name) > MaxNameLen {
			return nil, fmt.Errorf("gguf: tensor name %q too long", t.Name)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		if nd < 1 || nd > MaxDims {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions", t.Name, nd)
		}
		for range nd {
			t.Ne = append(t.Ne, int64(rd.u64()))
		}
		t.Type = Type(rd.u32())
		t.Offset = int64(rd.u64())
		if rd.err != nil {
			return nil, fmt.Errorf("gguf: reading tensor %q: %w", t.Name, rd.err)
		}
		size, err := TensorSize(t.Type, t.Ne)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		t.Size = size
		if t.Offset != expect {
			return nil, fmt.Errorf("gguf: tensor %q has offset %d, expected %d", t.Name, t.Offset, expect)
		}
		expect += alignUp(size, f.Alignment)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(rd.n, f.Alignment)
	return f, nil
}

// Open decodes the header of the file at path and keeps it open for
// ReadTensor. It checks that every tensor lies within the file.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	f, err := Decode(fh)
	if err != nil {
		fh.Close()
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	for _, t := range f.Tensors {
		if end := f.DataOffset + t.Offset + t.Size; end > st.Size() {
			fh.Close()
			return nil, fmt.Errorf("gguf: tensor %q ends at %d, beyond the file size %d", t.Name, end, st.Size())
		}
	}
	f.f = fh
	return f, nil
}

// Close closes the file opened by Open.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// ReadTensor returns the raw data of the named tensor.
func (f *File) ReadTensor(name string) ([]byte, error) {
	if f.f == nil {
		return nil, errors.New("gguf: file not open")
	}
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	b := make([]byte, t.Size)
	_, err := f.f.ReadAt(b, f.DataOffset+t.Offset)
	return b, err
}

// ReadTensorFloat32 returns the named tensor decoded to float32.
func (f *File) ReadTensorFloat32(name string) ([]float32, error) {
	b, err := f.ReadTensor(name)
	if err != nil {
		return nil, err
	}
	t, _ := f.Tensor(name)
	n := int64(1)
	for _, x := range t.Ne {
		n *= x
	}
	out := make([]float32, n)
	rowBytes, _ := t.Type.RowSize(t.Ne[0])
	for r := int64(0); r < n/t.Ne[0]; r++ {
		if err := DecodeRow(t.Type, out[r*t.Ne[0]:(r+1)*t.Ne[0]], b[r*rowBytes:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
