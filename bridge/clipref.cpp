// clipref.cpp: thin C ABI over llama.cpp's own clip (tools/mtmd/clip.h), the
// reference our encoder and preprocessing are checked and benchmarked against.
#include "bridge.h"
#include "backend_guard.h"

#include "clip.h"
#include "clip-impl.h" // struct clip_image_f32 (pixels of a preprocessed image)

#include <cstdio>
#include <cstring>
#include <string>
#include <sys/stat.h>

struct hp_clip {
    clip_ctx * ctx = nullptr;
    ~hp_clip() {
        if (ctx) clip_free(ctx);
    }
};

struct hp_clip_images {
    clip_image_f32_batch * batch = nullptr;
    ~hp_clip_images() {
        if (batch) clip_image_f32_batch_free(batch);
    }
};

namespace {
void set_err(char * err, size_t errlen, const std::string & msg) {
    if (err && errlen > 0) snprintf(err, errlen, "%s", msg.c_str());
}
} // namespace

extern "C" {

int hp_clip_open(const char * path, int use_gpu, int flash_attn, hp_clip ** out, char * err, size_t errlen) {
    if (out) *out = nullptr;
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        set_err(err, errlen, std::string(path ? path : "(null)") + ": no such file");
        return HP_ERR_IO;
    }
    clip_context_params p{};
    p.use_gpu = use_gpu != 0;
    p.flash_attn_type = flash_attn < 0 ? CLIP_FLASH_ATTN_TYPE_AUTO
                        : flash_attn   ? CLIP_FLASH_ATTN_TYPE_ENABLED
                                       : CLIP_FLASH_ATTN_TYPE_DISABLED;
    p.image_min_tokens = -1;
    p.image_max_tokens = -1;
    p.warmup = true;
    clip_init_result r;
    try {
        r = clip_init(path, p);
    } catch (...) {
        r = {nullptr, nullptr};
    }
    if (r.ctx_a) {
        hp_defer_scope scope; // as in hp_clip_free
        clip_free(r.ctx_a);
    }
    if (!r.ctx_v) {
        set_err(err, errlen, std::string(path) + ": llama.cpp clip could not load it (see log)");
        return HP_ERR_FORMAT;
    }
    auto * c = new hp_clip;
    c->ctx = r.ctx_v;
    *out = c;
    return HP_OK;
}

void hp_clip_free(hp_clip * c) {
    hp_defer_scope scope; // clip_ctx frees its backends before its scheduler
    delete c;
}

int hp_clip_image_size(const hp_clip * c) { return clip_get_image_size(c->ctx); }

int hp_clip_n_mmproj_embd(const hp_clip * c) { return clip_n_mmproj_embd(c->ctx); }

int hp_clip_n_output_tokens(const hp_clip * c, int nx, int ny) {
    clip_image_f32 img;
    img.nx = nx;
    img.ny = ny;
    return clip_n_output_tokens(c->ctx, &img);
}

int hp_clip_preprocess(hp_clip * c, const uint8_t * rgb, int nx, int ny, hp_clip_images ** out, char * err,
                       size_t errlen) {
    if (out) *out = nullptr;
    if (!c || !rgb || !out || nx <= 0 || ny <= 0) {
        set_err(err, errlen, "hp_clip_preprocess: bad argument");
        return HP_ERR_ARG;
    }
    clip_image_u8 * u8 = clip_image_u8_init();
    clip_build_img_from_pixels(rgb, nx, ny, u8);
    clip_image_f32_batch * batch = clip_image_f32_batch_init();
    const bool ok = clip_image_preprocess(c->ctx, u8, batch) && clip_image_f32_batch_n_images(batch) >= 1;
    clip_image_u8_free(u8);
    if (!ok) {
        clip_image_f32_batch_free(batch);
        set_err(err, errlen, "clip_image_preprocess failed");
        return HP_ERR_BACKEND;
    }
    *out = new hp_clip_images{batch};
    return HP_OK;
}

int hp_clip_images_count(const hp_clip_images * im) { return im ? (int) clip_image_f32_batch_n_images(im->batch) : 0; }

const float * hp_clip_images_get(const hp_clip_images * im, int i, int * nx, int * ny) {
    if (!im || i < 0 || i >= hp_clip_images_count(im)) return nullptr;
    if (nx) *nx = (int) clip_image_f32_batch_nx(im->batch, i);
    if (ny) *ny = (int) clip_image_f32_batch_ny(im->batch, i);
    return clip_image_f32_get_img(im->batch, i)->buf.data();
}

void hp_clip_images_free(hp_clip_images * im) { delete im; }

int hp_clip_encode(hp_clip * c, int n_threads, const float * img, int nx, int ny, float * out, char * err, size_t errlen) {
    if (!c || !img || !out) {
        set_err(err, errlen, "hp_clip_encode: NULL argument");
        return HP_ERR_ARG;
    }
    if (clip_is_mrope(c->ctx)) {
        // Qwen-VL graphs take any size made of 2x2 patch groups (and
        // GGML_ASSERT on anything else).
        const int a = 2 * clip_get_patch_size(c->ctx);
        if (nx <= 0 || ny <= 0 || nx % a != 0 || ny % a != 0) {
            set_err(err, errlen, "hp_clip_encode: image sides must be positive multiples of twice the patch size");
            return HP_ERR_ARG;
        }
    } else {
        const int s = clip_get_image_size(c->ctx);
        if (nx != s || ny != s) {
            set_err(err, errlen, "hp_clip_encode: image size does not match the model");
            return HP_ERR_ARG;
        }
    }
    if (!clip_encode_float_image(c->ctx, n_threads, const_cast<float *>(img), ny, nx, out)) {
        set_err(err, errlen, "clip_encode_float_image failed");
        return HP_ERR_BACKEND;
    }
    return HP_OK;
}

} // extern "C"
