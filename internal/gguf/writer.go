package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Source streams the data of one tensor: it must write exactly the tensor's
// byte size (TensorSize) to w, and may be called more than once (once per
// WriteTo/Size-checking pass), so it must be deterministic and re-entrant.
type Source func(w io.Writer) error

// TensorInfo describes a declared tensor.
type TensorInfo struct {
	Name   string
	Type   Type
	Ne     []int64 // ggml order: Ne[0] is the contiguous (row) dimension
	Offset int64   // from the start of the data section; a multiple of the alignment
	Size   int64   // unpadded data size in bytes
}

type kv struct {
	key  string
	typ  ValueType
	elem ValueType // element type for arrays
	val  any       // scalar value, or []string / []float32 / []int32 / []uint32 for arrays
}

type tensor struct {
	info TensorInfo
	src  Source
}

// Writer builds a GGUF v3 file: add metadata and declare tensors with a data
// Source, then call WriteTo or WriteFile. Tensor data is streamed from the
// sources in declaration order; only the metadata is held in memory.
//
// Every Add* method returns an error and also remembers the first one, which
// WriteTo, WriteFile and Size return too, so callers may check only once.
type Writer struct {
	kvs       []kv
	keys      map[string]bool
	tensors   []tensor
	names     map[string]bool
	alignment int64
	err       error
}

// NewWriter returns an empty writer with the default alignment (32).
func NewWriter() *Writer {
	return &Writer{
		keys:      map[string]bool{},
		names:     map[string]bool{},
		alignment: DefaultAlignment,
	}
}

// Err returns the first error recorded by an Add* call.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) addKV(k kv) error {
	if k.key == "" {
		return w.fail(errors.New("gguf: empty metadata key"))
	}
	if w.keys[k.key] {
		return w.fail(fmt.Errorf("gguf: duplicate metadata key %q", k.key))
	}
	if k.key == KeyAlignment {
		v, ok := k.val.(uint32)
		if k.typ != ValUint32 || !ok {
			return w.fail(fmt.Errorf("gguf: %s must be a uint32, got %v", KeyAlignment, k.typ))
		}
		if v == 0 || v&(v-1) != 0 {
			return w.fail(fmt.Errorf("gguf: %s=%d is not a power of two", KeyAlignment, v))
		}
		if len(w.tensors) > 0 {
			return w.fail(fmt.Errorf("gguf: %s must be set before the first tensor is added", KeyAlignment))
		}
		w.alignment = int64(v)
	}
	w.keys[k.key] = true
	w.kvs = append(w.kvs, k)
	return nil
}

// AddUint32 adds a u32 value.
func (w *Writer) AddUint32(key string, v uint32) error {
	return w.addKV(kv{key: key, typ: ValUint32, val: v})
}

// AddInt32 adds an i32 value.
func (w *Writer) AddInt32(key string, v int32) error {
	return w.addKV(kv{key: key, typ: ValInt32, val: v})
}

// AddUint64 adds a u64 value.
func (w *Writer) AddUint64(key string, v uint64) error {
	return w.addKV(kv{key: key, typ: ValUint64, val: v})
}

// AddFloat32 adds an f32 value.
func (w *Writer) AddFloat32(key string, v float32) error {
	return w.addKV(kv{key: key, typ: ValFloat32, val: v})
}

// AddBool adds a bool value.
func (w *Writer) AddBool(key string, v bool) error {
	return w.addKV(kv{key: key, typ: ValBool, val: v})
}

// AddString adds a string value.
func (w *Writer) AddString(key string, v string) error {
	return w.addKV(kv{key: key, typ: ValString, val: v})
}

// AddStringArray adds an array of strings (copied).
func (w *Writer) AddStringArray(key string, v []string) error {
	return w.addKV(kv{key: key, typ: ValArray, elem: ValString, val: slices.Clone(v)})
}

// AddFloat32Array adds an array of f32 (copied).
func (w *Writer) AddFloat32Array(key string, v []float32) error {
	return w.addKV(kv{key: key, typ: ValArray, elem: ValFloat32, val: slices.Clone(v)})
}

// AddInt32Array adds an array of i32 (copied).
func (w *Writer) AddInt32Array(key string, v []int32) error {
	return w.addKV(kv{key: key, typ: ValArray, elem: ValInt32, val: slices.Clone(v)})
}

// AddUint32Array adds an array of u32 (copied).
func (w *Writer) AddUint32Array(key string, v []uint32) error {
	return w.addKV(kv{key: key, typ: ValArray, elem: ValUint32, val: slices.Clone(v)})
}

// SetAlignment writes general.alignment (u32) and uses it for the data
// section. It must be called before any tensor is added.
func (w *Writer) SetAlignment(a uint32) error {
	return w.AddUint32(KeyAlignment, a)
}

// Alignment is the data alignment in bytes.
func (w *Writer) Alignment() int64 { return w.alignment }

// AddTensor declares a tensor. ne is in ggml order (ne[0] is the row length);
// src must stream exactly TensorSize(typ, ne) bytes.
func (w *Writer) AddTensor(name string, typ Type, ne []int64, src Source) error {
	switch {
	case name == "":
		return w.fail(errors.New("gguf: empty tensor name"))
	case len(name) > MaxNameLen:
		return w.fail(fmt.Errorf("gguf: tensor name %q is %d bytes, ggml allows at most %d", name, len(name), MaxNameLen))
	case w.names[name]:
		return w.fail(fmt.Errorf("gguf: duplicate tensor name %q", name))
	case !typ.Known():
		return w.fail(fmt.Errorf("gguf: tensor %q: unsupported type %v", name, typ))
	case src == nil:
		return w.fail(fmt.Errorf("gguf: tensor %q: nil data source", name))
	}
	size, err := TensorSize(typ, ne)
	if err != nil {
		return w.fail(fmt.Errorf("tensor %q (%v, ne=%v): %w", name, typ, ne, err))
	}
	var off int64
	if n := len(w.tensors); n > 0 {
		last := w.tensors[n-1].info
		off = last.Offset + alignUp(last.Size, w.alignment)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, tensor{
		info: TensorInfo{Name: name, Type: typ, Ne: slices.Clone(ne), Offset: off, Size: size},
		src:  src,
	})
	return nil
}

// Tensors returns the declared tensors with their computed offsets.
func (w *Writer) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(w.tensors))
	for i, t := range w.tensors {
		out[i] = t.info
		out[i].Ne = slices.Clone(t.info.Ne)
	}
	return out
}

// NumKV is the number of metadata entries added so far.
func (w *Writer) NumKV() int { return len(w.kvs) }

// dataSize is the padded size of the data section.
func (w *Writer) dataSize() int64 {
	n := len(w.tensors)
	if n == 0 {
		return 0
	}
	last := w.tensors[n-1].info
	return last.Offset + alignUp(last.Size, w.alignment)
}

// Size is the exact size in bytes of the file WriteTo would produce.
func (w *Writer) Size() (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	meta, err := w.metadata()
	if err != nil {
		return 0, err
	}
	return alignUp(int64(len(meta)), w.alignment) + w.dataSize(), nil
}

// metadata encodes header, KVs and tensor infos.
func (w *Writer) metadata() ([]byte, error) {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(Magic)
	b.Write(le.AppendUint32(nil, Version))
	b.Write(le.AppendUint64(nil, uint64(len(w.tensors))))
	b.Write(le.AppendUint64(nil, uint64(len(w.kvs))))
	for _, k := range w.kvs {
		writeString(&b, k.key)
		b.Write(le.AppendUint32(nil, uint32(k.typ)))
		if k.typ == ValArray {
			b.Write(le.AppendUint32(nil, uint32(k.elem)))
			switch v := k.val.(type) {
			case []string:
				b.Write(le.AppendUint64(nil, uint64(len(v))))
				for _, s := range v {
					writeString(&b, s)
				}
			case []float32:
				b.Write(le.AppendUint64(nil, uint64(len(v))))
				for _, x := range v {
					b.Write(le.AppendUint32(nil, math.Float32bits(x)))
				}
			case []int32:
				b.Write(le.AppendUint64(nil, uint64(len(v))))
				for _, x := range v {
					b.Write(le.AppendUint32(nil, uint32(x)))
				}
			case []uint32:
				b.Write(le.AppendUint64(nil, uint64(len(v))))
				for _, x := range v {
					b.Write(le.AppendUint32(nil, x))
				}
			default:
				return nil, fmt.Errorf("gguf: key %q: unsupported array value %T", k.key, k.val)
			}
			continue
		}
		switch v := k.val.(type) {
		case uint32:
			b.Write(le.AppendUint32(nil, v))
		case int32:
			b.Write(le.AppendUint32(nil, uint32(v)))
		case uint64:
			b.Write(le.AppendUint64(nil, v))
		case float32:
			b.Write(le.AppendUint32(nil, math.Float32bits(v)))
		case bool:
			if v {
				b.WriteByte(1)
			} else {
				b.WriteByte(0)
			}
		case string:
			writeString(&b, v)
		default:
			return nil, fmt.Errorf("gguf: key %q: unsupported value %T", k.key, k.val)
		}
	}
	for _, t := range w.tensors {
		writeString(&b, t.info.Name)
		b.Write(le.AppendUint32(nil, uint32(len(t.info.Ne))))
		for _, n := range t.info.Ne {
			b.Write(le.AppendUint64(nil, uint64(n)))
		}
		b.Write(le.AppendUint32(nil, uint32(t.info.Type)))
		b.Write(le.AppendUint64(nil, uint64(t.info.Offset)))
	}
	return b.Bytes(), nil
}

func writeString(b *bytes.Buffer, s string) {
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
	b.WriteString(s)
}

var zeros [256]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// WriteTo writes the whole file to dst, streaming each tensor's data from its
// Source through a buffered writer. It implements io.WriterTo.
func (w *Writer) WriteTo(dst io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	meta, err := w.metadata()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: dst}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if _, err := bw.Write(meta); err != nil {
		return cw.n, err
	}
	if err := writeZeros(bw, alignUp(int64(len(meta)), w.alignment)-int64(len(meta))); err != nil {
		return cw.n, err
	}
	for _, t := range w.tensors {
		lw := &limitedWriter{w: bw, left: t.info.Size}
		if err := t.src(lw); err != nil {
			return cw.n, fmt.Errorf("gguf: tensor %q: %w", t.info.Name, err)
		}
		if lw.over {
			return cw.n, fmt.Errorf("gguf: tensor %q: source wrote more than %d bytes", t.info.Name, t.info.Size)
		}
		if lw.left != 0 {
			return cw.n, fmt.Errorf("gguf: tensor %q: source wrote %d bytes, want %d", t.info.Name, t.info.Size-lw.left, t.info.Size)
		}
		if err := writeZeros(bw, alignUp(t.info.Size, w.alignment)-t.info.Size); err != nil {
			return cw.n, err
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// WriteFile writes the file to a temporary file in the same directory and
// renames it to path only once it is complete, so an interrupted run never
// leaves a truncated file under the final name.
func (w *Writer) WriteFile(path string) (err error) {
	if w.err != nil {
		return w.err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = w.WriteTo(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type limitedWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errors.New("write exceeds the declared tensor size")
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
