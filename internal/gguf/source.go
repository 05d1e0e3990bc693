package gguf

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// BytesSource streams b as is.
func BytesSource(b []byte) Source {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

// Float32Source encodes data (row-major, len = product of ne) as type t.
func Float32Source(t Type, ne []int64, data []float32) Source {
	return func(w io.Writer) error {
		if len(ne) == 0 {
			return fmt.Errorf("empty shape")
		}
		n := int64(1)
		for _, x := range ne {
			n *= x
		}
		if int64(len(data)) != n {
			return fmt.Errorf("have %d values for shape %v (%d elements)", len(data), ne, n)
		}
		row, err := t.RowSize(ne[0])
		if err != nil {
			return err
		}
		buf := make([]byte, row)
		for r := int64(0); r < n/ne[0]; r++ {
			if _, err := EncodeRow(t, buf, data[r*ne[0]:(r+1)*ne[0]]); err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
}

// ChunkedSource streams size bytes produced in chunks of chunkSize bytes (the
// last one may be shorter). fill(i, buf) must fill buf with the content of
// chunk i, which starts at byte i*chunkSize; it is called from up to workers
// goroutines at once (workers <= 0 means GOMAXPROCS), and chunks are written
// in order. Memory is bounded by about 2*workers chunk buffers. The output
// depends only on size, chunkSize and fill, never on workers or scheduling.
func ChunkedSource(size int64, chunkSize int, workers int, fill func(i int64, buf []byte) error) Source {
	return func(w io.Writer) error {
		if size < 0 || chunkSize < 1 {
			return fmt.Errorf("bad chunking: size %d, chunk %d", size, chunkSize)
		}
		nw := workers
		if nw <= 0 {
			nw = runtime.GOMAXPROCS(0)
		}
		nchunks := (size + int64(chunkSize) - 1) / int64(chunkSize)
		if nchunks == 0 {
			return nil
		}
		nw = int(min(int64(nw), nchunks))
		inflight := 2 * nw

		type result struct {
			buf []byte
			err error
		}
		type job struct {
			i   int64
			buf []byte
			out chan result
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		pool := make(chan []byte, inflight)
		for range inflight {
			pool <- make([]byte, chunkSize)
		}
		jobs := make(chan job)
		futures := make(chan chan result, inflight)

		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // dispatcher: hands out chunks in order
			defer wg.Done()
			defer close(jobs)
			defer close(futures)
			for i := int64(0); i < nchunks; i++ {
				var buf []byte
				select {
				case buf = <-pool:
				case <-ctx.Done():
					return
				}
				n := min(int64(chunkSize), size-i*int64(chunkSize))
				out := make(chan result, 1)
				futures <- out // never blocks: at most inflight buffers are out
				select {
				case jobs <- job{i: i, buf: buf[:n], out: out}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for range nw {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					j.out <- result{buf: j.buf, err: fill(j.i, j.buf)}
				}
			}()
		}

		var err error
		for out := range futures {
			r, ok := <-out
			if !ok || err != nil {
				break
			}
			if r.err != nil {
				err = r.err
				break
			}
			if _, werr := w.Write(r.buf); werr != nil {
				err = werr
				break
			}
			pool <- r.buf[:cap(r.buf)]
		}
		cancel()
		// drain so the dispatcher can exit, then wait for in-flight fills
		go func() {
			for range futures {
			}
		}()
		wg.Wait()
		return err
	}
}

// RowSource streams a tensor of type t and shape ne whose rows (ne[0]
// consecutive elements) are produced by fill(row, dst) and converted or
// quantized to t. Rows are generated in parallel (workers <= 0: GOMAXPROCS)
// in chunks of about 1 MiB; fill must depend only on row for the output to be
// deterministic.
func RowSource(t Type, ne []int64, workers int, fill func(row int64, dst []float32)) Source {
	return func(w io.Writer) error {
		size, err := TensorSize(t, ne)
		if err != nil {
			return err
		}
		rowBytes, _ := t.RowSize(ne[0])
		rowsPerChunk := max(1, (1<<20)/rowBytes)
		return ChunkedSource(size, int(rowsPerChunk*rowBytes), workers, func(i int64, buf []byte) error {
			scratch := make([]float32, ne[0])
			first := i * rowsPerChunk
			for r := int64(0); r < int64(len(buf))/rowBytes; r++ {
				fill(first+r, scratch)
				if _, err := EncodeRow(t, buf[r*rowBytes:(r+1)*rowBytes], scratch); err != nil {
					return err
				}
			}
			return nil
		})(w)
	}
}
