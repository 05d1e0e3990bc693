// gguf_loader.h: reads an mmproj GGUF's keys and tensors with checks, so
// that a malformed file becomes an error message instead of a ggml abort.
#pragma once

#include "ggml.h"
#include "ggml-backend.h"
#include "gguf.h"

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace hp {

// error is thrown inside the shim and turned into (code, message) at the ABI.
struct error : std::runtime_error {
    int code;
    error(int c, const std::string & msg) : std::runtime_error(msg), code(c) {}
};

std::string strfmt(const char * fmt, ...);

class gguf_file {
public:
    explicit gguf_file(const std::string & path);
    ~gguf_file();
    gguf_file(const gguf_file &) = delete;
    gguf_file & operator=(const gguf_file &) = delete;

    const std::string & path() const { return path_; }
    bool has(const char * key) const;
    uint32_t get_u32(const char * key) const;                       // throws when missing
    uint32_t get_u32(const char * key, uint32_t def) const;         // default when missing
    float get_f32(const char * key) const;
    bool get_bool(const char * key, bool def) const;
    std::string get_str(const char * key, const std::string & def) const;
    std::vector<float> get_arr_f32(const char * key) const;
    // get_arr_i32 reads an array of int32 (or uint32 values that fit);
    // empty when the key is missing.
    std::vector<int32_t> get_arr_i32(const char * key) const;

    // tensor returns the named tensor's metadata (no data) or nullptr.
    ggml_tensor * tensor(const std::string & name) const;
    ggml_tensor * require(const std::string & name) const;
    ggml_context * meta() const { return meta_; }

    // load_into reads the data of every tensor of dst_ctx (same names as in
    // the file) from disk into its backend buffer. Tensors whose type in dst
    // differs from the file are converted through F32: from F32, F16 or
    // BF16 to F32, F16 or a quantized type (ggml_quantize_chunk).
    void load_into(ggml_context * dst_ctx) const;

private:
    std::string path_;
    gguf_context * gguf_ = nullptr;
    ggml_context * meta_ = nullptr;
    int64_t file_size_ = 0;
    size_t data_offset_ = 0;
};

} // namespace hp
