#include "gguf_loader.h"
#include "bridge.h"

#include <cstdarg>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

namespace hp {

std::string strfmt(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string s(n > 0 ? n : 0, '\0');
    if (n > 0) {
        vsnprintf(s.data(), s.size() + 1, fmt, ap2);
    }
    va_end(ap2);
    return s;
}

namespace {
struct file_closer {
    void operator()(FILE * f) const { if (f) fclose(f); }
};
using file_ptr = std::unique_ptr<FILE, file_closer>;
} // namespace

gguf_file::gguf_file(const std::string & path) : path_(path) {
    file_ptr f(fopen(path.c_str(), "rb"));
    if (!f) {
        throw error(HP_ERR_IO, strfmt("%s: cannot open: %s", path.c_str(), strerror(errno)));
    }
    // gguf_init_from_file would print a parse error and return NULL on a
    // non-GGUF file; check the magic first to name the problem ourselves.
    char magic[4] = {0};
    if (fread(magic, 1, 4, f.get()) != 4 || memcmp(magic, "GGUF", 4) != 0) {
        throw error(HP_ERR_FORMAT, strfmt("%s: not a GGUF file (bad magic)", path.c_str()));
    }
    if (fseeko(f.get(), 0, SEEK_END) != 0) {
        throw error(HP_ERR_IO, strfmt("%s: cannot seek", path.c_str()));
    }
    file_size_ = ftello(f.get());
    f.reset();

    gguf_init_params params = { /*no_alloc*/ true, /*ctx*/ &meta_ };
    // The Go side checks the header first (bridge/mmproj_check.go); ggml's
    // reader still throws std::length_error or bad_alloc on a string length
    // it cannot allocate, whose own text ("basic_string::_M_replace_aux")
    // means nothing to a user.
    try {
        gguf_ = gguf_init_from_file(path.c_str(), params);
    } catch (const std::length_error &) {
        throw error(HP_ERR_FORMAT, strfmt("%s: invalid GGUF header (a string or array length is past any limit)", path.c_str()));
    } catch (const std::bad_alloc &) {
        throw error(HP_ERR_FORMAT, strfmt("%s: invalid GGUF header (a string or array length is larger than memory)", path.c_str()));
    }
    if (!gguf_) {
        throw error(HP_ERR_FORMAT, strfmt("%s: invalid or truncated GGUF header", path.c_str()));
    }
    data_offset_ = gguf_get_data_offset(gguf_);
    // With no_alloc, gguf does not read tensor data, so a truncated file would
    // only show up as garbage or a short read later: check the extents now.
    const int64_t n = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n; i++) {
        const char * name = gguf_get_tensor_name(gguf_, i);
        const size_t off = gguf_get_tensor_offset(gguf_, i);
        const size_t sz = gguf_get_tensor_size(gguf_, i);
        if ((int64_t)(data_offset_ + off + sz) > file_size_) {
            throw error(HP_ERR_IO, strfmt("%s: tensor %s ends at byte %zu but the file has %lld bytes (truncated?)",
                                          path.c_str(), name, data_offset_ + off + sz, (long long)file_size_));
        }
    }
}

gguf_file::~gguf_file() {
    if (gguf_) gguf_free(gguf_);
    if (meta_) ggml_free(meta_);
}

bool gguf_file::has(const char * key) const { return gguf_find_key(gguf_, key) >= 0; }

uint32_t gguf_file::get_u32(const char * key) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) {
        throw error(HP_ERR_FORMAT, strfmt("%s: missing key %s", path_.c_str(), key));
    }
    switch (gguf_get_kv_type(gguf_, id)) {
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(gguf_, id);
        case GGUF_TYPE_INT32: {
            const int32_t v = gguf_get_val_i32(gguf_, id);
            if (v < 0) throw error(HP_ERR_FORMAT, strfmt("%s: key %s is negative (%d)", path_.c_str(), key, v));
            return (uint32_t)v;
        }
        default:
            throw error(HP_ERR_FORMAT, strfmt("%s: key %s has type %s, want uint32", path_.c_str(), key,
                                              gguf_type_name(gguf_get_kv_type(gguf_, id))));
    }
}

uint32_t gguf_file::get_u32(const char * key, uint32_t def) const {
    return has(key) ? get_u32(key) : def;
}

float gguf_file::get_f32(const char * key) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) {
        throw error(HP_ERR_FORMAT, strfmt("%s: missing key %s", path_.c_str(), key));
    }
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_FLOAT32) {
        throw error(HP_ERR_FORMAT, strfmt("%s: key %s has type %s, want float32", path_.c_str(), key,
                                          gguf_type_name(gguf_get_kv_type(gguf_, id))));
    }
    return gguf_get_val_f32(gguf_, id);
}

bool gguf_file::get_bool(const char * key, bool def) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_BOOL) {
        throw error(HP_ERR_FORMAT, strfmt("%s: key %s has type %s, want bool", path_.c_str(), key,
                                          gguf_type_name(gguf_get_kv_type(gguf_, id))));
    }
    return gguf_get_val_bool(gguf_, id);
}

std::string gguf_file::get_str(const char * key, const std::string & def) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) {
        throw error(HP_ERR_FORMAT, strfmt("%s: key %s has type %s, want string", path_.c_str(), key,
                                          gguf_type_name(gguf_get_kv_type(gguf_, id))));
    }
    return gguf_get_val_str(gguf_, id);
}

std::vector<float> gguf_file::get_arr_f32(const char * key) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) {
        throw error(HP_ERR_FORMAT, strfmt("%s: missing key %s", path_.c_str(), key));
    }
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_ARRAY || gguf_get_arr_type(gguf_, id) != GGUF_TYPE_FLOAT32) {
        throw error(HP_ERR_FORMAT, strfmt("%s: key %s is not an array of float32", path_.c_str(), key));
    }
    const size_t n = gguf_get_arr_n(gguf_, id);
    const float * p = (const float *) gguf_get_arr_data(gguf_, id);
    return std::vector<float>(p, p + n);
}

std::vector<int32_t> gguf_file::get_arr_i32(const char * key) const {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return {};
    const bool arr = gguf_get_kv_type(gguf_, id) == GGUF_TYPE_ARRAY;
    const gguf_type t = arr ? gguf_get_arr_type(gguf_, id) : GGUF_TYPE_COUNT;
    if (t != GGUF_TYPE_INT32 && t != GGUF_TYPE_UINT32) {
        throw error(HP_ERR_FORMAT, strfmt("%s: key %s is not an array of int32", path_.c_str(), key));
    }
    const size_t n = gguf_get_arr_n(gguf_, id);
    std::vector<int32_t> out(n);
    if (t == GGUF_TYPE_INT32) {
        const int32_t * p = (const int32_t *) gguf_get_arr_data(gguf_, id);
        out.assign(p, p + n);
    } else {
        const uint32_t * p = (const uint32_t *) gguf_get_arr_data(gguf_, id);
        for (size_t i = 0; i < n; i++) {
            if (p[i] > (uint32_t) INT32_MAX) {
                throw error(HP_ERR_FORMAT, strfmt("%s: key %s[%zu] = %u is out of range", path_.c_str(), key, i, p[i]));
            }
            out[i] = (int32_t) p[i];
        }
    }
    return out;
}

ggml_tensor * gguf_file::tensor(const std::string & name) const {
    return ggml_get_tensor(meta_, name.c_str());
}

ggml_tensor * gguf_file::require(const std::string & name) const {
    ggml_tensor * t = tensor(name);
    if (!t) {
        throw error(HP_ERR_FORMAT, strfmt("%s: missing tensor %s", path_.c_str(), name.c_str()));
    }
    return t;
}

void gguf_file::load_into(ggml_context * dst_ctx) const {
    file_ptr f(fopen(path_.c_str(), "rb"));
    if (!f) {
        throw error(HP_ERR_IO, strfmt("%s: cannot open: %s", path_.c_str(), strerror(errno)));
    }
    std::vector<uint8_t> buf;
    std::vector<float> wide;
    std::vector<uint8_t> q;
    for (ggml_tensor * dst = ggml_get_first_tensor(dst_ctx); dst; dst = ggml_get_next_tensor(dst_ctx, dst)) {
        const int64_t id = gguf_find_tensor(gguf_, dst->name);
        if (id < 0) {
            throw error(HP_ERR_FORMAT, strfmt("%s: missing tensor %s", path_.c_str(), dst->name));
        }
        const ggml_type src_type = gguf_get_tensor_type(gguf_, id);
        const size_t src_size = gguf_get_tensor_size(gguf_, id);
        buf.resize(src_size);
        if (fseeko(f.get(), (off_t)(data_offset_ + gguf_get_tensor_offset(gguf_, id)), SEEK_SET) != 0 ||
            fread(buf.data(), 1, src_size, f.get()) != src_size) {
            throw error(HP_ERR_IO, strfmt("%s: short read of tensor %s", path_.c_str(), dst->name));
        }
        if (src_type == dst->type) {
            ggml_backend_tensor_set(dst, buf.data(), 0, src_size);
        } else if ((src_type == GGML_TYPE_F32 || src_type == GGML_TYPE_F16 || src_type == GGML_TYPE_BF16) &&
                   (dst->type == GGML_TYPE_F32 || (!ggml_quantize_requires_imatrix(dst->type) &&
                                                   dst->ne[0] % ggml_blck_size(dst->type) == 0))) {
            // through F32: widening (F16 parameters) or the encoder's weight
            // type (hp_encoder_params.weights)
            const int64_t n = ggml_nelements(dst);
            wide.resize(n);
            if (src_type == GGML_TYPE_F16) {
                ggml_fp16_to_fp32_row((const ggml_fp16_t *) buf.data(), wide.data(), n);
            } else if (src_type == GGML_TYPE_BF16) {
                ggml_bf16_to_fp32_row((const ggml_bf16_t *) buf.data(), wide.data(), n);
            } else {
                std::memcpy(wide.data(), buf.data(), n * sizeof(float));
            }
            if (dst->type == GGML_TYPE_F32) {
                ggml_backend_tensor_set(dst, wide.data(), 0, n * sizeof(float));
                continue;
            }
            q.resize(ggml_nbytes(dst));
            const size_t written = ggml_quantize_chunk(dst->type, wide.data(), q.data(), 0, n / dst->ne[0], dst->ne[0], nullptr);
            if (written != q.size()) {
                throw error(HP_ERR_BACKEND, strfmt("%s: tensor %s: converting to %s wrote %zu bytes, want %zu", path_.c_str(),
                                                   dst->name, ggml_type_name(dst->type), written, q.size()));
            }
            ggml_backend_tensor_set(dst, q.data(), 0, q.size());
        } else {
            throw error(HP_ERR_FORMAT, strfmt("%s: tensor %s: cannot load %s data as %s", path_.c_str(), dst->name,
                                              ggml_type_name(src_type), ggml_type_name(dst->type)));
        }
    }
}

} // namespace hp
