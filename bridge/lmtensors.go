package bridge

import (
	"fmt"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// llama.cpp's loader takes a language model's tensors in whatever type the
// file says, and its CPU kernels then abort or read out of bounds on the
// first graph: a matrix in an integer type (I32 has F32's size, so the
// layout stays valid) crashes the matrix product with SIGSEGV, a norm weight
// that is not F32 aborts the element-wise multiply ("binary_op: unsupported
// types"), an integer token_embd fails the scheduler's GGML_ASSERT. The
// checks below refuse those types by tensor name before llama.cpp loads.

// matrixTypes are the weight types the CPU backend multiplies by (those
// with a vec_dot in ggml-cpu.c's type_traits_cpu): float, and every
// quantization except Q8_1 and Q8_K, which exist only as the activation side
// of a dot product.
var matrixTypes = map[gguf.Type]bool{}

func init() {
	for t := range gguf.Type(40) {
		switch t {
		case 9, 15, 24, 25, 26, 27, 28: // Q8_1, Q8_K, I8, I16, I32, I64, F64
			continue
		}
		if _, err := gguf.DataSize(t, []int64{256}); err == nil {
			matrixTypes[t] = true
		}
	}
}

// checkModelTensorTypes opens path's header (checkModelFile has refused a
// malformed one) and checks each tensor's type against how llama.cpp's
// graph uses it: 1-D tensors (norms, biases) are the second operand of an
// F32 add or multiply, which ggml-cpu's binary ops only take as F32;
// matrices are multiplied or, for token_embd, looked up by row.
func checkModelTensorTypes(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("model: %s: %v: %w", path, err, ErrFormat)
	}
	defer f.Close()
	for _, t := range f.Tensors {
		dims := 0
		for _, n := range t.Ne {
			if n > 1 {
				dims++
			}
		}
		switch {
		case dims <= 1 && t.Type != gguf.TypeF32:
			return fmt.Errorf("model: %s: tensor %s has type %v; llama.cpp's kernels need F32 for a 1-D weight: %w",
				path, t.Name, t.Type, ErrFormat)
		case dims > 1 && !matrixTypes[t.Type]:
			return fmt.Errorf("model: %s: tensor %s has type %v, which llama.cpp cannot use as a weight matrix "+
				"(want F32, F16, BF16 or a quantized type): %w", path, t.Name, t.Type, ErrFormat)
		}
	}
	return nil
}
