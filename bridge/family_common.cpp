// family_common.cpp: see family_common.h.
#include "family_common.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace hp {

bool is_matmul_type(ggml_type t) {
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16 ||
           (ggml_is_quantized(t) && t != GGML_TYPE_Q8_1 && t != GGML_TYPE_Q8_K);
}

int read_dim(const gguf_file & f, const char * key, uint32_t hi) {
    const uint32_t v = f.get_u32(key);
    if (v < 1 || v > hi) {
        throw error(HP_ERR_FORMAT, strfmt("%s: %s = %u is out of range (1..%u)", f.path().c_str(), key, v, hi));
    }
    return (int) v;
}

void read_norm_stats(const gguf_file & f, float mean[3], float std[3]) {
    const std::vector<float> m = f.get_arr_f32("clip.vision.image_mean");
    const std::vector<float> s = f.get_arr_f32("clip.vision.image_std");
    if (m.size() < 3 || s.size() < 3) {
        throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.image_mean/image_std need 3 values, have %zu/%zu",
                                          f.path().c_str(), m.size(), s.size()));
    }
    for (int i = 0; i < 3; i++) {
        mean[i] = m[i];
        std[i] = s[i];
        if (!(std[i] != 0.0f) || !std::isfinite(std[i])) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.image_std[%d] = %g, want a finite non-zero value",
                                              f.path().c_str(), i, std[i]));
        }
        if (!std::isfinite(mean[i])) {
            throw error(HP_ERR_FORMAT, strfmt("%s: clip.vision.image_mean[%d] = %g, want a finite value", f.path().c_str(), i,
                                              mean[i]));
        }
    }
}

ggml_tensor * declare_weight(const gguf_file & f, ggml_context * ctx_w, const std::string & name, bool required,
                             std::initializer_list<int64_t> shape, bool matmul, ggml_type mm_type) {
    const char * path = f.path().c_str();
    ggml_tensor * m = required ? f.require(name) : f.tensor(name);
    if (!m) return nullptr;
    int nd = 0;
    for (int64_t d : shape) {
        if (m->ne[nd] != d) {
            throw error(HP_ERR_FORMAT, strfmt("%s: tensor %s has shape [%lld %lld %lld %lld], dim %d should be %lld", path,
                                              name.c_str(), (long long) m->ne[0], (long long) m->ne[1], (long long) m->ne[2],
                                              (long long) m->ne[3], nd, (long long) d));
        }
        nd++;
    }
    for (int d = nd; d < GGML_MAX_DIMS; d++) {
        if (m->ne[d] != 1) {
            throw error(HP_ERR_FORMAT, strfmt("%s: tensor %s has %d dims, want %d", path, name.c_str(), ggml_n_dims(m), nd));
        }
    }
    ggml_type t = m->type;
    if (matmul) {
        if (!is_matmul_type(t)) {
            throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has unsupported type %s", path, name.c_str(), ggml_type_name(t)));
        }
        // Only 2-D matrices are converted: the patch embedding is a
        // convolution kernel, which ggml's im2col wants in F16 or F32.
        if (mm_type != GGML_TYPE_COUNT && mm_type != t && nd == 2) {
            if (t != GGML_TYPE_F32 && t != GGML_TYPE_F16 && t != GGML_TYPE_BF16) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s is stored as %s; weights convert to %s only from f32, f16 "
                                                 "or bf16", path, name.c_str(), ggml_type_name(t), ggml_type_name(mm_type)));
            }
            if (m->ne[0] % ggml_blck_size(mm_type) != 0) {
                throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has rows of %lld values, not a multiple of %s's block of %lld",
                                                 path, name.c_str(), (long long) m->ne[0], ggml_type_name(mm_type),
                                                 (long long) ggml_blck_size(mm_type)));
            }
            t = mm_type;
        }
    } else if (t == GGML_TYPE_F16) {
        t = GGML_TYPE_F32;
    } else if (t != GGML_TYPE_F32) {
        throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has type %s, want f32 or f16", path, name.c_str(), ggml_type_name(t)));
    }
    ggml_tensor * w = ggml_new_tensor(ctx_w, t, GGML_MAX_DIMS, m->ne);
    ggml_set_name(w, name.c_str());
    return w;
}

int probe_chunk_rows(int n, int n_head, size_t bytes) {
    const size_t row = (size_t) n * (size_t) n_head * sizeof(float);
    return (int) std::max<size_t>(1, std::min<size_t>((size_t) n, bytes / row));
}

ggml_tensor * probe_scores(ggml_context * ctx0, ggml_cgraph * gf, ggml_tensor * q, ggml_tensor * k, ggml_tensor * mask,
                           float kq_scale, size_t bytes) {
    const int D = (int) q->ne[0], n = (int) q->ne[1], H = (int) q->ne[2];
    const int rows = probe_chunk_rows(n, H, bytes);
    ggml_tensor * acc = nullptr; // [n, H] column sums
    for (int r0 = 0; r0 < n; r0 += rows) {
        const int nr = std::min(rows, n - r0);
        ggml_tensor * qc = nr == n ? q : ggml_view_3d(ctx0, q, D, nr, H, q->nb[1], q->nb[2], (size_t) r0 * q->nb[1]);
        ggml_tensor * mc = nullptr;
        if (mask) {
            mc = nr == n ? mask : ggml_view_2d(ctx0, mask, n, nr, mask->nb[1], (size_t) r0 * mask->nb[1]);
        }
        ggml_tensor * kq = ggml_mul_mat(ctx0, k, qc); // [n, nr, H]
        kq = ggml_soft_max_ext(ctx0, kq, mc, kq_scale, 0.0f);
        // The sum over query rows is an outer product with ones, which
        // reads the probabilities once without a transposed copy.
        ggml_tensor * ones = ggml_fill(ctx0, ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, 1, nr, H), 1.0f);
        ggml_tensor * cs = ggml_reshape_2d(ctx0, ggml_out_prod(ctx0, kq, ones), n, H);
        acc = acc ? ggml_add(ctx0, acc, cs) : cs;
        // Chunk by chunk, so the allocator reuses one chunk's memory.
        ggml_build_forward_expand(gf, acc);
    }
    ggml_tensor * s = ggml_sum_rows(ctx0, ggml_cont(ctx0, ggml_transpose(ctx0, acc))); // [1, n]
    return ggml_scale(ctx0, ggml_reshape_1d(ctx0, s, n), 1.0f / ((float) n * (float) H));
}

ggml_tensor * lin(ggml_context * ctx0, ggml_tensor * w, ggml_tensor * b, ggml_tensor * x) {
    x = ggml_mul_mat(ctx0, w, x);
    if (b) x = ggml_add(ctx0, x, b);
    return x;
}

ggml_tensor * norm(ggml_context * ctx0, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, float eps, bool rms) {
    x = rms ? ggml_rms_norm(ctx0, x, eps) : ggml_norm(ctx0, x, eps);
    if (w) x = ggml_mul(ctx0, x, w);
    if (b) x = ggml_add(ctx0, x, b);
    return x;
}

ggml_tensor * ffn(ggml_context * ctx0, ggml_tensor * x, ffn_act act, ggml_tensor * up_w, ggml_tensor * up_b,
                  ggml_tensor * gate_w, ggml_tensor * gate_b, ggml_tensor * down_w, ggml_tensor * down_b) {
    ggml_tensor * up = lin(ctx0, up_w, up_b, x);
    if (!gate_w) {
        switch (act) {
            case ffn_act::silu: x = ggml_silu(ctx0, up); break;
            case ffn_act::gelu: x = ggml_gelu(ctx0, up); break;
            case ffn_act::gelu_quick: x = ggml_gelu_quick(ctx0, up); break;
        }
    } else {
        ggml_tensor * gate = lin(ctx0, gate_w, gate_b, x);
        switch (act) {
            case ffn_act::silu: x = ggml_swiglu_split(ctx0, gate, up); break;
            case ffn_act::gelu: x = ggml_geglu_split(ctx0, gate, up); break;
            case ffn_act::gelu_quick: x = ggml_geglu_quick_split(ctx0, gate, up); break;
        }
    }
    return lin(ctx0, down_w, down_b, x);
}

void set_planar_image(ggml_cgraph * gf, const float * img, int nx, int ny) {
    const size_t n = (size_t) nx * (size_t) ny;
    std::vector<float> planar(n * 3);
    for (size_t i = 0; i < n; i++) {
        planar[i] = img[3 * i];
        planar[n + i] = img[3 * i + 1];
        planar[2 * n + i] = img[3 * i + 2];
    }
    ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "inp_raw"), planar.data(), 0, planar.size() * sizeof(float));
}

} // namespace hp
