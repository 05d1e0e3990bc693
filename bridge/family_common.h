// family_common.h: what every vision family's loader shares: reading
// bounded hyper-parameters and declaring weights after checking them
// against the file.
#pragma once

#include "encoder.h"

#include <initializer_list>
#include <string>

namespace hp {

// is_matmul_type: types the CPU backend multiplies as weights (Q8_1 and
// Q8_K are quantized but only as the other side of a dot product).
bool is_matmul_type(ggml_type t);

// read_dim reads a u32 key that must lie in 1..hi, so that a corrupted value
// is named here rather than as an overflow or a huge allocation further on.
int read_dim(const gguf_file & f, const char * key, uint32_t hi);

// read_norm_stats reads clip.vision.image_mean / image_std (3 finite
// values each, std non-zero).
void read_norm_stats(const gguf_file & f, float mean[3], float std[3]);

// declare_weight creates in ctx_w the tensor `name` of the file (nullptr
// when absent and not required) after checking its shape (the leading
// dimensions given, the others 1) and type: a matmul weight keeps any type
// the CPU multiplies; any other parameter is F32 (F16 is widened on load).
ggml_tensor * declare_weight(const gguf_file & f, ggml_context * ctx_w, const std::string & name, bool required,
                             std::initializer_list<int64_t> shape, bool matmul);

// probe_chunk_rows is how many query rows of an n-token, n_head-head
// attention one probe chunk of `bytes` holds (at least 1, at most n).
int probe_chunk_rows(int n, int n_head, size_t bytes);

// probe_scores adds to gf the attention each of the n keys receives,
// averaged over the heads and the query rows: the column means of
// softmax(k^T q * scale + mask), materialised in chunks of query rows
// (probe_chunk_rows of `bytes`) so that the n x n x heads matrix never
// exists at once. q and k are [d_head, n, n_head] (permuted views), mask
// [n, n] or nullptr. Returns a [n] tensor.
ggml_tensor * probe_scores(ggml_context * ctx0, ggml_cgraph * gf, ggml_tensor * q, ggml_tensor * k, ggml_tensor * mask,
                           float kq_scale, size_t bytes);

} // namespace hp
