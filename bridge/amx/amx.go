// Package amx compiles ggml's AMX matrix kernels (ggml-cpu/amx: amx.cpp and
// mmq.cpp) into the binary. ollama's cgo build of ggml's CPU backend leaves
// those two files out, while its ggml-cpu.cpp registers their buffer type
// whenever the compiler targets AMX (__AMX_INT8__ and __AVX512VNNI__): a
// -march=native build on a Xeon with AMX would then fail to link. With this
// package linked in, it links, and llama.cpp puts quantized LM weights in
// the AMX buffer type on such CPUs (issue 15 measured the 1B-class Q4_0
// prefill 1.67x faster on one). Both files guard themselves with those
// macros, so for any other target this package compiles to nothing, and at
// run time ggml asks the kernel for AMX and falls back to its other kernels
// when it is refused.
//
// bridge imports it; nothing else needs to.
package amx

/*
#cgo CPPFLAGS: -DNDEBUG -I${SRCDIR}/../../third_party/include/ggml -I${SRCDIR}/../../third_party/include/ggml-src -I${SRCDIR}/../../third_party/include/ggml-src/ggml-cpu
#cgo CXXFLAGS: -std=c++17
*/
import "C"
