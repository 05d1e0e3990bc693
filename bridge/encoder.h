// encoder.h: the instrumented vision encoder. One graph builder per
// projector family sits behind vision_family; the encoder owns the weights,
// the backends and the scheduler, and reuses one allocated graph per image
// size.
#pragma once

#include "bridge.h"
#include "gguf_loader.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"

#include <memory>
#include <string>
#include <vector>

namespace hp {

// Graph outputs of one encode.
struct graph_out {
    ggml_tensor * embd = nullptr;   // [proj_dim, n_tokens], tokens in raster order
    ggml_tensor * object = nullptr; // [n_scores], one per patch in raster order
    ggml_tensor * deep = nullptr;   // [n_scores]
    // hidden replaces embd in a head graph (graph_opts.head): the residual
    // stream after the deep block's attention, [n_embd, n_tokens].
    ggml_tensor * hidden = nullptr;
};

struct graph_opts {
    int layout = HP_LAYOUT_CLS_FIRST;
    int object_block = 8; // 0-based
    bool flash_attn = false;
    int nx = 0, ny = 0; // the input size the graph is built for
    size_t probe_bytes = 128u << 20; // attention probabilities per probe chunk
    // head: stop after the deep block's attention and its residual, with
    // graph_out.hidden as the output (split encoding, see bridge.h).
    bool head = false;
};

// Output sizes of one nx x ny input.
struct image_dims {
    int n_tokens = 0; // embeddings the projector emits
    int n_scores = 0; // patches scored (n_tokens * merge^2)
};

// vision_family is what each supported projector family implements: read
// and check its hyper-parameters and tensors, then build the graph.
class vision_family {
public:
    virtual ~vision_family() = default;
    // declare creates the weight tensors the graph needs inside ctx_w (no
    // data yet), after checking names, shapes and types against the file;
    // 2-D matmul weights get mm_type (GGML_TYPE_COUNT: as stored).
    virtual void declare(const gguf_file & f, ggml_context * ctx_w, ggml_type mm_type) = 0;
    virtual void fill_info(hp_encoder_info & info) const = 0;
    // build adds the encoder graph to gf; inputs are named "inp_raw",
    // "positions" and "patches" and set by set_inputs.
    virtual graph_out build(ggml_context * ctx0, ggml_cgraph * gf, const graph_opts & o) const = 0;
    virtual void set_inputs(ggml_cgraph * gf, const float * img, int nx, int ny, const graph_opts & o) const = 0;
    // n_run is the number of blocks run; the deep layer is the last of them.
    virtual int n_run() const = 0;
    // default_object_layer is the family's object layer (1-based) before
    // it is clamped to n_run.
    virtual int default_object_layer() const = 0;
    // dims checks that the family takes an nx x ny input (throws HP_ERR_ARG
    // naming the problem otherwise) and returns its output sizes.
    virtual image_dims dims(int nx, int ny) const = 0;
    // default_size is the input the graph is first built for at open.
    virtual void default_size(int & nx, int & ny) const = 0;
    virtual size_t max_nodes(const graph_opts & o) const = 0;
    // n_weights bounds the weight tensors declare creates.
    virtual size_t n_weights() const = 0;

    // Split encoding (hp_encoder_encode_scores, hp_encoder_project), for
    // families whose every op after the deep block's attention works on
    // each token's row alone. splits() says the family builds head graphs
    // (graph_opts.head) and tail graphs; build_tail adds the rest of the
    // encoder for n_rows rows of the head's hidden output, input named
    // "tail_in", and returns the projected rows.
    virtual bool splits() const { return false; }
    // flash_on_cpu says whether "auto" turns flash attention on when the
    // encoder runs on the CPU backend (on a GPU, auto is on wherever the
    // device supports it).
    virtual bool flash_on_cpu() const { return true; }
    virtual ggml_tensor * build_tail(ggml_context * ctx0, ggml_cgraph * gf, int n_rows) const;
    virtual size_t max_tail_nodes() const { return 64; }
};

// make_family picks the family of the file's projector; the layout
// (HP_LAYOUT_*) decides the token order and, for some files, the depth.
std::unique_ptr<vision_family> make_family(const gguf_file & f, int layout);

// The families make_family builds (family_llava.cpp, family_qwen25vl.cpp,
// family_gemma3.cpp).
std::unique_ptr<vision_family> make_llava_mlp(const gguf_file & f, int layout);
std::unique_ptr<vision_family> make_qwen25vl(const gguf_file & f);
std::unique_ptr<vision_family> make_gemma3(const gguf_file & f);

} // namespace hp
