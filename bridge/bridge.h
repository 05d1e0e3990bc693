// bridge.h: the C ABI between hiprune-go's Go code and its C++ shim over
// ggml / llama.cpp. It is the only C surface of ours; everything else the Go
// side needs from llama.cpp it calls through llama.h / mtmd.h directly.
//
// Conventions
//   - Every function that can fail returns 0 on success and a non-zero
//     HP_ERR_* code on failure, and writes a NUL-terminated message naming
//     the problem into err (errlen bytes, may be NULL/0).
//   - Every object created by *_open has a matching *_free; free(NULL) is a
//     no-op.
//   - Objects are not internally synchronised: one call at a time per object
//     (the Go wrappers hold a mutex). Distinct objects are independent.
//   - No C++ exception crosses this ABI.
#ifndef HIPRUNE_BRIDGE_H
#define HIPRUNE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    HP_OK          = 0,
    HP_ERR_IO      = 1, // file missing, unreadable or truncated
    HP_ERR_FORMAT  = 2, // not a GGUF, missing or ill-typed key or tensor
    HP_ERR_UNSUP   = 3, // valid file of a kind we do not handle (projector type, ...)
    HP_ERR_ARG     = 4, // bad argument (image size, layer index, buffer size)
    HP_ERR_BACKEND = 5, // ggml backend failure (allocation, compute)
};

// Token order and depth of the encoder graph. LLaVA/HF CLIP puts the class
// token first, and LLaVA-1.5 feeds the projector with hidden_states[-2]; the
// default layout does both, running every block up to the layer LLaVA
// selects (all stored blocks of a file without clip.vision.feature_layer,
// blocks 1..L for feature_layer [L]; the rule and the converter facts behind
// it are in family_llava.cpp, blocks_to_run). The llama.cpp revision pinned
// by ollama v0.17.4 appends the class token last while still feeding
// positions and output rows as if it came first (llama.cpp issue 25814), so
// its image tokens are shifted by one patch, and runs block_count - 1 blocks
// of a file without feature_layer (one short, issue 25817).
// HP_LAYOUT_LLAMACPP reproduces both exactly, for parity with llama.cpp.
enum {
    HP_LAYOUT_CLS_FIRST = 0,
    HP_LAYOUT_LLAMACPP  = 1,
};

typedef struct hp_encoder_params {
    int object_layer; // 1-based encoder block probed for object attention; 0 = the family's default
                      // (9 for CLIP, 16 for Qwen2.5-VL, 13 for Gemma 3's SigLIP), or the deep
                      // layer when the encoder runs fewer blocks
    int layout;       // HP_LAYOUT_*
    int flash_attn;   // -1 auto (where the device supports it; on the CPU not for CLIP
                      // encoders, where it is slower), 0 off, 1 on
    int use_gpu;      // 1: run on a GPU device ggml has registered, if any (hp_pick_device)
    int n_threads;    // CPU threads; <= 0 means 4
    // probe_chunk_bytes bounds the attention probabilities a probed block
    // materialises at once (chunks of query rows; Qwen2.5-VL, whose images
    // can have thousands of patches); <= 0 means 128 MiB.
    long long probe_chunk_bytes;
    // weights: HP_WEIGHTS_*, the type the 2-D matrix weights (attention,
    // MLP, projector) are converted to at load; the patch embedding,
    // positions, norms and biases keep theirs. Conversion is from F32, F16
    // or BF16 only, and a row length not a multiple of the type's block is
    // an error naming the tensor.
    int weights;
    // no_extra_bufts keeps every weight in the device's plain buffer. By
    // default, on the CPU, quantized matrix weights go to the first of the
    // CPU backend's extra buffer types that takes them (ggml's repacked
    // layouts, AMX), as llama.cpp places an LM's (its --no-repack turns
    // that off); llama.cpp's clip uses the plain buffer.
    int no_extra_bufts;
} hp_encoder_params;

enum {
    HP_WEIGHTS_AS_STORED = 0,
    HP_WEIGHTS_F16 = 1,
    HP_WEIGHTS_Q8_0 = 2,
    HP_WEIGHTS_Q4_0 = 3,
};

typedef struct hp_encoder_info {
    char projector[32]; // projector type as stored in the file ("mlp", "qwen2.5vl_merger", "gemma3")
    char backend[64];   // ggml backend the graph runs on ("CPU", "CUDA0", ...)
    int image_size;     // square input side in pixels (dynamic: clip.vision.image_size, unused)
    int patch_size;
    int grid_w, grid_h; // token grid of one image: the patch grid / n_merge per side (CLIP: the
                        // patch grid; Gemma 3: 16x16 pooled tokens; dynamic: 0, it follows the image)
    int n_patches;      // image tokens emitted per image (grid_w * grid_h; dynamic: 0)
    int n_embd;         // ViT width
    int n_head;
    int n_ff;
    int n_block;        // blocks stored in the file (clip.vision.block_count)
    int n_run;          // blocks run, which depends on the layout (see above); the
                        // deep layer is the last of them and the features its output
    int object_layer;   // 1-based default object layer, as resolved at open
    int proj_dim;       // width of the projected embeddings (the LM's n_embd)
    int has_cls;
    int flash_attn;     // 1 if the non-probed layers use flash attention
    float mean[3], std[3];
    float eps;
    // n_merge is the side of the patch groups one image token is made of
    // (1 for CLIP, 2 for Qwen2.5-VL, 4 for Gemma 3's average pooling).
    // Dynamic resolution (Qwen2.5-VL):
    // dynamic = 1: the encoder takes any nx x ny whose sides are positive
    // multiples of patch_size * n_merge (up to max_tokens tokens), emits
    // (nx/patch_size/n_merge) * (ny/patch_size/n_merge) tokens in raster
    // order, and scores each of the (nx/patch_size) * (ny/patch_size)
    // patches; min_pixels / max_pixels are the area bounds llama.cpp's
    // clip_image_preprocess resizes to (8 and 4096 tokens), 0 for fixed-size
    // encoders. n_wa_pattern: every n_wa_pattern-th block (1-based) attends
    // over the whole image, the others within window_size-pixel windows (0:
    // no window attention).
    int n_merge;
    int dynamic;
    int min_pixels, max_pixels;
    int max_tokens;
    int n_wa_pattern;
    int window_size;
    // split = 1: hp_encoder_encode_scores and hp_encoder_project work
    // (projector type "mlp"; the others return HP_ERR_UNSUP).
    int split;
    // on_cpu = 1: the graph runs on ggml's CPU backend (backend above).
    int on_cpu;
    // weight_type: ggml's name of the first block's attention weights'
    // type as loaded ("f16", "q8_0", ...).
    char weight_type[16];
    // weight_buffer: ggml's name of the buffer type holding those weights
    // ("CPU", "CPU_REPACK", "AMX", "CUDA0", ...).
    char weight_buffer[32];
} hp_encoder_info;

typedef struct hp_encoder hp_encoder;

// hp_pick_device is the one place the encoder's device is chosen. types are
// the types (enum ggml_backend_dev_type values) of the devices ggml has
// registered, in registry order (ggml_backend_dev_get). With use_gpu it
// returns the index of the first GPU, else of the first integrated GPU
// (ggml_backend_init_best's preference); without, or when there is neither,
// -1: the CPU backend. Accelerators (BLAS, ...) are never picked: they take
// a few ops beside the CPU, not a whole graph.
int hp_pick_device(const int * types, int n, int use_gpu);

// hp_encoder_open loads an mmproj GGUF (projector type "mlp": CLIP ViT + LLaVA
// MLP projector; "qwen2.5vl_merger": Qwen2.5-VL's dynamic-resolution ViT
// with window attention and 2x2 merger; "gemma3": Gemma 3's SigLIP at a fixed
// square, average-pooled n_merge x n_merge, RMS-normed and projected),
// validates every key and tensor shape
// it will use, loads the weights onto the chosen backend and allocates the
// compute graph (again when an image of another size comes).
int  hp_encoder_open(const char * path, const hp_encoder_params * params,
                     hp_encoder ** out, char * err, size_t errlen);
void hp_encoder_free(hp_encoder * enc);
void hp_encoder_get_info(const hp_encoder * enc, hp_encoder_info * info);

// hp_encoder_encode runs one preprocessed image through the encoder.
//   img:    nx*ny*3 floats, interleaved RGB, row-major (llama.cpp's
//           clip_image_f32 layout), already normalised; nx = ny = image_size,
//           or for a dynamic encoder any size it takes (see hp_encoder_info).
//   n_threads <= 0 keeps the value given at open.
//   object_layer: 1-based block whose attention gives the object scores;
//           0 = the encoder's default (info.object_layer). This is the one
//           place the layer is resolved and range-checked; the graph is
//           rebuilt when it differs from the previous call's (on error the
//           encoder is unchanged). *used_layer (may be NULL) receives it.
//   embd:   n_tokens * proj_dim floats (row per image token, raster order),
//           or NULL; n_tokens = n_patches, or for a dynamic encoder
//           (nx/patch_size/n_merge) * (ny/patch_size/n_merge).
//   object, deep: one float per patch, (nx/patch_size) * (ny/patch_size),
//           in raster order (the attention each patch receives at the object
//           and the deep layer, mean over heads and query rows, CLS column
//           dropped), or NULL. For Qwen2.5-VL the window layers' attention is
//           taken within its windows, as the layer computes it (see
//           family_qwen25vl.cpp), and merging patches into tokens is left to
//           the caller (Qwen2.5-VL's 2x2 groups, Gemma 3's pooled squares).
int hp_encoder_encode(hp_encoder * enc, const float * img, int nx, int ny, int n_threads,
                      int object_layer, int * used_layer,
                      float * embd, float * object, float * deep,
                      char * err, size_t errlen);

// Split encoding. HiPrune needs every token's attention at the deep layer,
// but after that layer's attention (and its residual) the rest of the
// encoder works on each token's row alone: the deep block's MLP, the
// post-norm and the projector. So a caller that keeps N' of n tokens can
// run that rest for the kept rows only:
//
//   hp_encoder_encode_scores(..., hidden, object, deep)   all tokens
//   (select the kept tokens from object and deep)
//   hp_encoder_project(enc, rows of hidden, N', ..., embd)  kept tokens
//
// and gets, row for row, the embeddings hp_encoder_encode would have given.
// hp_encoder_encode_scores takes the arguments of hp_encoder_encode and
// writes hidden (n_tokens * n_embd floats, the tokens' residual stream
// after the deep block's attention, in embd's row order) instead of embd.
// hp_encoder_project takes n rows of hidden (1 <= n <= n_patches, any of
// them in any order, n * n_embd floats) and writes n * proj_dim floats in
// the same order. Both return HP_ERR_UNSUP unless info.split is 1.
int hp_encoder_encode_scores(hp_encoder * enc, const float * img, int nx, int ny, int n_threads,
                             int object_layer, int * used_layer,
                             float * hidden, float * object, float * deep,
                             char * err, size_t errlen);
int hp_encoder_project(hp_encoder * enc, const float * hidden, int n, int n_threads, float * embd,
                       char * err, size_t errlen);

// ---- freeing llama.cpp objects that own GPU backends --------------------------
//
// ollama's ggml resets every backend of a scheduler when it frees the
// scheduler, and llama.cpp's llama_context and clip_ctx free their backends
// first: with a backend that has a reset (CUDA), a use after free that
// crashed llama_free and clip_free on a GPU (backend_guard.cpp says more).

// hp_guard_gpu_backends makes every non-CPU device registered so far create
// backends whose free waits, inside hp_llama_free, hp_mtmd_free and
// hp_clip_free, until the object is otherwise gone. Call it once the registry
// has loaded the backend libraries and before any backend exists; calling it
// again is harmless. Returns the number of devices guarded.
int hp_guard_gpu_backends(void);
// llama_free and mtmd_free with that order: use these, never the plain ones.
struct llama_context;
struct mtmd_context;
void hp_llama_free(struct llama_context * ctx);
void hp_mtmd_free(struct mtmd_context * ctx);

// ---- llama.cpp's own clip, for parity tests and baselines -------------------

typedef struct hp_clip hp_clip;

int  hp_clip_open(const char * path, int use_gpu, int flash_attn, hp_clip ** out,
                  char * err, size_t errlen);
void hp_clip_free(hp_clip * c);
int  hp_clip_image_size(const hp_clip * c);
int  hp_clip_n_mmproj_embd(const hp_clip * c);
// hp_clip_n_output_tokens: tokens clip emits for an nx x ny preprocessed image.
int  hp_clip_n_output_tokens(const hp_clip * c, int nx, int ny);

// hp_clip_images holds the float images clip_image_preprocess made of one
// input (one for LLaVA-1.5; the base view and the tiles for LLaVA-NeXT).
typedef struct hp_clip_images hp_clip_images;

// hp_clip_preprocess runs clip_image_preprocess on an RGB8 image; free the
// result with hp_clip_images_free.
int hp_clip_preprocess(hp_clip * c, const uint8_t * rgb, int nx, int ny,
                       hp_clip_images ** out, char * err, size_t errlen);
int hp_clip_images_count(const hp_clip_images * im);
// hp_clip_images_get returns image i's pixels (nx*ny*3 floats, interleaved
// RGB, owned by im) and sets *nx, *ny; NULL when i is out of range.
const float * hp_clip_images_get(const hp_clip_images * im, int i, int * nx, int * ny);
void hp_clip_images_free(hp_clip_images * im);

// hp_clip_encode runs clip_encode_float_image (an image_size square, or for
// Qwen-VL projectors any sides that are multiples of 2 * patch_size); out holds
// hp_clip_n_output_tokens * hp_clip_n_mmproj_embd floats.
int hp_clip_encode(hp_clip * c, int n_threads, const float * img, int nx, int ny,
                   float * out, char * err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif // HIPRUNE_BRIDGE_H
