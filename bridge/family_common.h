// family_common.h: what every vision family shares: reading bounded
// hyper-parameters, declaring weights after checking them against the
// file, and the graph pieces clip.cpp builds the same way for each.
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
// the CPU multiplies, or becomes mm_type (GGML_TYPE_COUNT: keep) when it is
// a 2-D matrix; any other parameter is F32 (F16 is widened on load).
ggml_tensor * declare_weight(const gguf_file & f, ggml_context * ctx_w, const std::string & name, bool required,
                             std::initializer_list<int64_t> shape, bool matmul, ggml_type mm_type);

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

// ffn_act is the MLP activation (clip.use_gelu / clip.use_silu, else quick
// GELU).
enum class ffn_act { gelu, silu, gelu_quick };

// lin is w x, plus b when there is one.
ggml_tensor * lin(ggml_context * ctx0, ggml_tensor * w, ggml_tensor * b, ggml_tensor * x);

// norm is LayerNorm (RMSNorm with rms) of x's rows, scaled by w and shifted
// by b when they are there.
ggml_tensor * norm(ggml_context * ctx0, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, float eps, bool rms);

// ffn is clip.cpp's build_ffn: up (and gate in parallel), the activation
// (of the gate times up when there is a gate, else of up), then down.
ggml_tensor * ffn(ggml_context * ctx0, ggml_tensor * x, ffn_act act, ggml_tensor * up_w, ggml_tensor * up_b,
                  ggml_tensor * gate_w, ggml_tensor * gate_b, ggml_tensor * down_w, ggml_tensor * down_b);

// set_planar_image writes an nx x ny interleaved RGB image into the graph's
// "inp_raw" input, one plane per channel as ggml_conv_2d reads it.
void set_planar_image(ggml_cgraph * gf, const float * img, int nx, int ny);

} // namespace hp
