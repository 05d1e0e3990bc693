// family_common.cpp: see family_common.h.
#include "family_common.h"

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
                             std::initializer_list<int64_t> shape, bool matmul) {
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
    } else if (t == GGML_TYPE_F16) {
        t = GGML_TYPE_F32;
    } else if (t != GGML_TYPE_F32) {
        throw error(HP_ERR_UNSUP, strfmt("%s: tensor %s has type %s, want f32 or f16", path, name.c_str(), ggml_type_name(t)));
    }
    ggml_tensor * w = ggml_new_tensor(ctx_w, t, GGML_MAX_DIMS, m->ne);
    ggml_set_name(w, name.c_str());
    return w;
}

} // namespace hp
