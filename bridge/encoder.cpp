// encoder.cpp: hp_encoder, the C ABI over the instrumented vision encoder.
#include "encoder.h"

#include "ggml-cpu.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

struct hp_encoder {
    std::unique_ptr<hp::gguf_file> file;
    std::unique_ptr<hp::vision_family> fam;
    hp_encoder_info info{};
    hp::graph_opts opts;
    int n_threads = 4;

    ggml_context * ctx_w = nullptr;
    // The weights' buffers: the device's default one, and on the CPU one
    // per extra buffer type (repacked layouts, AMX) that holds some.
    std::vector<ggml_backend_buffer_t> buf_w;
    ggml_backend_t backend = nullptr;     // where the graph runs
    ggml_backend_t backend_cpu = nullptr; // fallback for ops the device lacks
    ggml_backend_sched_t sched = nullptr;
    size_t sched_nodes = 0; // graph size the scheduler was made for

    std::vector<uint8_t> meta; // graph metadata arena
    ggml_context * ctx0 = nullptr;
    ggml_cgraph * gf = nullptr;
    hp::graph_out out;

    // The tail graph of split encoding (hp_encoder_project), with its own
    // scheduler so that the main graph stays allocated between images.
    ggml_backend_sched_t sched_tail = nullptr;
    std::vector<uint8_t> meta_tail;
    ggml_context * ctx_tail = nullptr;
    ggml_cgraph * gf_tail = nullptr;
    ggml_tensor * tail_out = nullptr;
    int tail_rows = 0; // rows the tail graph is built for

    ~hp_encoder() {
        if (sched_tail) ggml_backend_sched_free(sched_tail);
        if (ctx_tail) ggml_free(ctx_tail);
        if (sched) ggml_backend_sched_free(sched);
        if (ctx0) ggml_free(ctx0);
        for (ggml_backend_buffer_t b : buf_w) ggml_backend_buffer_free(b);
        if (ctx_w) ggml_free(ctx_w);
        if (backend && backend != backend_cpu) ggml_backend_free(backend);
        if (backend_cpu) ggml_backend_free(backend_cpu);
    }
};

namespace {

void set_err(char * err, size_t errlen, const std::string & msg) {
    if (err && errlen > 0) {
        snprintf(err, errlen, "%s", msg.c_str());
    }
}

template <typename F>
int guarded(char * err, size_t errlen, F && f) {
    try {
        f();
        return HP_OK;
    } catch (const hp::error & e) {
        set_err(err, errlen, e.what());
        return e.code;
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "out of memory");
        return HP_ERR_BACKEND;
    } catch (const std::exception & e) {
        set_err(err, errlen, e.what());
        return HP_ERR_BACKEND;
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
        return HP_ERR_BACKEND;
    }
}

void set_threads(ggml_backend_t cpu, int n) {
    if (!cpu || n <= 0) return;
    ggml_backend_dev_t dev = ggml_backend_get_device(cpu);
    ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
    auto fn = reg ? (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads")
                  : nullptr;
    if (fn) fn(cpu, n);
}

// new_sched creates a scheduler over the encoder's backends for graphs of
// up to n nodes.
ggml_backend_sched_t new_sched(hp_encoder & e, size_t n) {
    std::vector<ggml_backend_t> backends;
    std::vector<ggml_backend_buffer_type_t> bufts;
    backends.push_back(e.backend);
    bufts.push_back(ggml_backend_get_default_buffer_type(e.backend));
    if (e.backend != e.backend_cpu) {
        backends.push_back(e.backend_cpu);
        bufts.push_back(ggml_backend_get_default_buffer_type(e.backend_cpu));
    }
    ggml_backend_sched_t s = ggml_backend_sched_new(backends.data(), bufts.data(), (int) backends.size(), n, false, true);
    if (!s) throw hp::error(HP_ERR_BACKEND, "cannot create the ggml scheduler");
    return s;
}

// cpu_extra_bufts lists the CPU device's extra buffer types (ggml's AMX
// and repacked layouts, where the build has them), in ggml's order of
// preference.
std::vector<ggml_backend_buffer_type_t> cpu_extra_bufts(ggml_backend_dev_t dev) {
    std::vector<ggml_backend_buffer_type_t> out;
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    auto fn = reg ? (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts")
                  : nullptr;
    for (ggml_backend_buffer_type_t * p = fn ? fn(dev) : nullptr; p && *p; p++) out.push_back(*p);
    return out;
}

// takes_weight asks the device, as llama.cpp's model loader does, whether a
// weight w held in buft can be multiplied with the f32 activations the
// encoder gives it (the extra types take only some types, shapes and
// operand layouts).
bool takes_weight(ggml_backend_dev_t dev, ggml_backend_buffer_type_t buft, ggml_tensor * w) {
    ggml_init_params p = {4 * ggml_tensor_overhead(), nullptr, /*no_alloc*/ true};
    ggml_context * ctx = ggml_init(p);
    if (!ctx) return false;
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, w->ne[0], 512);
    ggml_tensor * op = ggml_mul_mat(ctx, w, x);
    ggml_backend_buffer_t probe = ggml_backend_buft_alloc_buffer(buft, 0);
    bool ok = false;
    if (probe) {
        ggml_backend_buffer_t prev = w->buffer;
        w->buffer = probe;
        ok = ggml_backend_dev_supports_op(dev, op);
        w->buffer = prev;
        ggml_backend_buffer_free(probe);
    }
    ggml_free(ctx);
    return ok;
}

// alloc_weights places the weights: on the CPU, each quantized matrix in
// the first extra buffer type that takes it (with_extra), as llama.cpp
// places an LM's weights; everything else, and on a GPU everything, in the
// device's default buffer. A buffer type with a size limit (Metal's) gets
// as many buffers as it takes, as ggml_backend_alloc_ctx_tensors_from_buft
// does. Fills info.weight_type and info.weight_buffer from the first
// block's first matrix.
void alloc_weights(hp_encoder & e, const char * path, bool with_extra) {
    ggml_backend_buffer_type_t plain = ggml_backend_get_default_buffer_type(e.backend);
    std::vector<ggml_backend_buffer_type_t> bufts = {plain};
    if (with_extra && e.backend == e.backend_cpu) {
        for (ggml_backend_buffer_type_t b : cpu_extra_bufts(ggml_backend_get_device(e.backend))) bufts.push_back(b);
    }
    ggml_backend_dev_t dev = ggml_backend_get_device(e.backend);
    std::vector<std::vector<ggml_tensor *>> groups(bufts.size());
    for (ggml_tensor * t = ggml_get_first_tensor(e.ctx_w); t; t = ggml_get_next_tensor(e.ctx_w, t)) {
        size_t k = 0;
        if (ggml_is_quantized(t->type) && ggml_n_dims(t) == 2) {
            for (size_t j = 1; j < bufts.size(); j++) {
                if (takes_weight(dev, bufts[j], t)) {
                    k = j;
                    break;
                }
            }
        }
        if (!e.info.weight_type[0] && strncmp(t->name, "v.blk.0.", 8) == 0 && ggml_n_dims(t) == 2) {
            snprintf(e.info.weight_type, sizeof(e.info.weight_type), "%s", ggml_type_name(t->type));
            snprintf(e.info.weight_buffer, sizeof(e.info.weight_buffer), "%s", ggml_backend_buft_name(bufts[k]));
        }
        groups[k].push_back(t);
    }
    for (size_t j = 0; j < bufts.size(); j++) {
        const size_t align = ggml_backend_buft_get_alignment(bufts[j]);
        const size_t max_size = ggml_backend_buft_get_max_size(bufts[j]);
        for (size_t first = 0; first < groups[j].size();) {
            size_t last = first, size = 0;
            for (; last < groups[j].size(); last++) {
                const size_t n = GGML_PAD(ggml_backend_buft_get_alloc_size(bufts[j], groups[j][last]), align);
                if (last > first && size + n > max_size) break;
                size += n;
            }
            ggml_backend_buffer_t b = ggml_backend_buft_alloc_buffer(bufts[j], size);
            if (!b) {
                throw hp::error(HP_ERR_BACKEND, hp::strfmt("%s: cannot allocate %zu bytes of weights in %s", path, size,
                                                           ggml_backend_buft_name(bufts[j])));
            }
            e.buf_w.push_back(b);
            ggml_backend_buffer_set_usage(b, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
            ggml_tallocr alloc = ggml_tallocr_new(b);
            for (; first < last; first++) {
                if (ggml_tallocr_alloc(&alloc, groups[j][first]) != GGML_STATUS_SUCCESS) {
                    throw hp::error(HP_ERR_BACKEND, hp::strfmt("%s: cannot place tensor %s", path, groups[j][first]->name));
                }
            }
        }
    }
}

// make_sched (re)creates the main graph's scheduler for up to n nodes.
void make_sched(hp_encoder & e, size_t n) {
    if (e.sched) {
        ggml_backend_sched_free(e.sched);
        e.sched = nullptr;
    }
    e.sched = new_sched(e, n);
    e.sched_nodes = n;
}

// build_tail (re)creates and allocates the tail graph for n rows.
void build_tail(hp_encoder & e, int n) {
    const size_t nodes = e.fam->max_tail_nodes() * 2;
    if (!e.sched_tail) e.sched_tail = new_sched(e, nodes);
    if (e.ctx_tail) {
        ggml_free(e.ctx_tail);
        e.ctx_tail = nullptr;
        e.tail_rows = 0;
    }
    e.meta_tail.resize(nodes * ggml_tensor_overhead() + ggml_graph_overhead_custom(nodes, false));
    ggml_init_params p = {e.meta_tail.size(), e.meta_tail.data(), /*no_alloc*/ true};
    e.ctx_tail = ggml_init(p);
    if (!e.ctx_tail) throw hp::error(HP_ERR_BACKEND, "ggml_init failed for the tail graph context");
    e.gf_tail = ggml_new_graph_custom(e.ctx_tail, nodes, false);
    e.tail_out = e.fam->build_tail(e.ctx_tail, e.gf_tail, n);
    ggml_backend_sched_reset(e.sched_tail);
    if (!ggml_backend_sched_alloc_graph(e.sched_tail, e.gf_tail)) {
        throw hp::error(HP_ERR_BACKEND, "cannot allocate the encoder's tail graph (out of memory?)");
    }
    e.tail_rows = n;
}

// build (re)creates the graph with the current options and reserves memory.
void build_graph(hp_encoder & e) {
    if (e.ctx0) {
        ggml_free(e.ctx0);
        e.ctx0 = nullptr;
    }
    const size_t max_nodes = e.fam->max_nodes(e.opts) * 2;
    if (max_nodes > e.sched_nodes) make_sched(e, max_nodes);
    e.meta.resize(max_nodes * ggml_tensor_overhead() + ggml_graph_overhead_custom(max_nodes, false));
    ggml_init_params p = {e.meta.size(), e.meta.data(), /*no_alloc*/ true};
    e.ctx0 = ggml_init(p);
    if (!e.ctx0) throw hp::error(HP_ERR_BACKEND, "ggml_init failed for the graph context");
    e.gf = ggml_new_graph_custom(e.ctx0, max_nodes, false);
    e.out = e.fam->build(e.ctx0, e.gf, e.opts);
}

// resolve_object_layer is the one place the object layer is chosen: a
// request of 0 means fallback (the encoder's default once opened; at open
// the family's object layer, 9 for CLIP-L, 16 for Qwen2.5-VL and 13 for
// Gemma 3's SigLIP, or the
// deep layer when the encoder runs fewer blocks).
int resolve_object_layer(const std::string & path, int requested, int fallback, int n_run) {
    const int obj = requested > 0 ? requested : fallback;
    if (requested < 0 || obj > n_run) {
        throw hp::error(HP_ERR_ARG, hp::strfmt("%s: object layer %d is out of range: the encoder runs %d blocks (1..%d)",
                                               path.c_str(), requested, n_run, n_run));
    }
    return obj;
}

void alloc_graph(hp_encoder & e) {
    ggml_backend_sched_reset(e.sched);
    if (!ggml_backend_sched_alloc_graph(e.sched, e.gf)) {
        throw hp::error(HP_ERR_BACKEND, "cannot allocate the encoder graph (out of memory?)");
    }
}

} // namespace

namespace hp {

ggml_tensor * vision_family::build_tail(ggml_context *, ggml_cgraph *, int) const {
    throw error(HP_ERR_UNSUP, "this projector family does not split its encoder");
}

std::unique_ptr<vision_family> make_family(const gguf_file & f, int layout) {
    if (!f.get_bool("clip.has_vision_encoder", false)) {
        throw error(HP_ERR_UNSUP, strfmt("%s: clip.has_vision_encoder is not true (no vision encoder)", f.path().c_str()));
    }
    std::string proj = f.get_str("clip.projector_type", "");
    if (proj.empty()) proj = f.get_str("clip.vision.projector_type", "");
    if (proj.empty()) proj = "mlp"; // llama.cpp's default for old LLaVA files
    if (proj == "mlp") {
        return make_llava_mlp(f, layout);
    }
    if (proj == "qwen2.5vl_merger") {
        return make_qwen25vl(f);
    }
    if (proj == "gemma3") {
        return make_gemma3(f);
    }
    throw error(HP_ERR_UNSUP, strfmt("%s: projector type \"%s\" is not supported (supported: mlp, qwen2.5vl_merger, gemma3)",
                                     f.path().c_str(), proj.c_str()));
}

} // namespace hp

extern "C" {

int hp_pick_device(const int * types, int n, int use_gpu) {
    if (!use_gpu || !types) return -1;
    for (const int want : {(int) GGML_BACKEND_DEVICE_TYPE_GPU, (int) GGML_BACKEND_DEVICE_TYPE_IGPU}) {
        for (int i = 0; i < n; i++) {
            if (types[i] == want) return i;
        }
    }
    return -1;
}

int hp_encoder_open(const char * path, const hp_encoder_params * params, hp_encoder ** out, char * err, size_t errlen) {
    if (out) *out = nullptr;
    return guarded(err, errlen, [&] {
        if (!path || !out) throw hp::error(HP_ERR_ARG, "hp_encoder_open: NULL argument");
        hp_encoder_params pr = params ? *params : hp_encoder_params{0, HP_LAYOUT_CLS_FIRST, -1, 0, 4, 0, HP_WEIGHTS_AS_STORED, 0};
        auto e = std::make_unique<hp_encoder>();
        if (pr.layout != HP_LAYOUT_CLS_FIRST && pr.layout != HP_LAYOUT_LLAMACPP) {
            throw hp::error(HP_ERR_ARG, hp::strfmt("unknown token layout %d", pr.layout));
        }
        ggml_type mm_type;
        switch (pr.weights) {
        case HP_WEIGHTS_AS_STORED: mm_type = GGML_TYPE_COUNT; break;
        case HP_WEIGHTS_F16: mm_type = GGML_TYPE_F16; break;
        case HP_WEIGHTS_Q8_0: mm_type = GGML_TYPE_Q8_0; break;
        case HP_WEIGHTS_Q4_0: mm_type = GGML_TYPE_Q4_0; break;
        default: throw hp::error(HP_ERR_ARG, hp::strfmt("unknown weight type %d", pr.weights));
        }
        e->file = std::make_unique<hp::gguf_file>(path);
        e->fam = hp::make_family(*e->file, pr.layout);

        const int n_run = e->fam->n_run();
        const int obj = resolve_object_layer(path, pr.object_layer, std::min(e->fam->default_object_layer(), n_run), n_run);
        e->opts.object_block = obj - 1;
        e->opts.layout = pr.layout;
        if (pr.probe_chunk_bytes > 0) e->opts.probe_bytes = (size_t) pr.probe_chunk_bytes;
        e->n_threads = pr.n_threads > 0 ? pr.n_threads : 4;

        // Backends: the device hp_pick_device chooses among those ggml has
        // registered (a GPU when asked and one is there), with the CPU as
        // the fallback for ops the device lacks.
        e->backend_cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
        if (!e->backend_cpu) throw hp::error(HP_ERR_BACKEND, "cannot initialise the ggml CPU backend");
        std::vector<int> types(ggml_backend_dev_count());
        for (size_t i = 0; i < types.size(); i++) types[i] = (int) ggml_backend_dev_type(ggml_backend_dev_get(i));
        const int dev_idx = hp_pick_device(types.data(), (int) types.size(), pr.use_gpu);
        if (dev_idx >= 0) {
            ggml_backend_dev_t dev = ggml_backend_dev_get((size_t) dev_idx);
            e->backend = ggml_backend_dev_init(dev, nullptr);
            if (!e->backend) {
                throw hp::error(HP_ERR_BACKEND, hp::strfmt("cannot initialise ggml device %s (%s)", ggml_backend_dev_name(dev),
                                                           ggml_backend_dev_description(dev)));
            }
        } else {
            e->backend = e->backend_cpu;
        }

        // Weights: declared from the file after shape checks, then loaded.
        const size_t n_tensors = e->fam->n_weights();
        ggml_init_params wp = {n_tensors * ggml_tensor_overhead(), nullptr, /*no_alloc*/ true};
        e->ctx_w = ggml_init(wp);
        if (!e->ctx_w) throw hp::error(HP_ERR_BACKEND, "ggml_init failed for the weights context");
        e->fam->declare(*e->file, e->ctx_w, mm_type);
        e->fam->fill_info(e->info);
        e->info.object_layer = obj;
        e->info.split = e->fam->splits() ? 1 : 0;
        e->info.on_cpu = e->backend == e->backend_cpu ? 1 : 0;
        snprintf(e->info.backend, sizeof(e->info.backend), "%s", ggml_backend_name(e->backend));
        alloc_weights(*e, path, !pr.no_extra_bufts);
        e->file->load_into(e->ctx_w);

        e->fam->default_size(e->opts.nx, e->opts.ny);

        // "auto": flash attention where the device supports it, as
        // llama.cpp's clip does, except on the CPU for families where it
        // does not pay (flash_on_cpu); the probed layers add an explicit
        // softmax for their scores only.
        e->opts.flash_attn = pr.flash_attn > 0 || (pr.flash_attn < 0 && (e->backend != e->backend_cpu || e->fam->flash_on_cpu()));
        build_graph(*e);
        if (pr.flash_attn < 0 && e->opts.flash_attn) {
            bool ok = true;
            for (int i = 0; i < ggml_graph_n_nodes(e->gf); i++) {
                ggml_tensor * n = ggml_graph_node(e->gf, i);
                if (n->op == GGML_OP_FLASH_ATTN_EXT && !ggml_backend_supports_op(e->backend, n)) ok = false;
            }
            if (!ok) {
                e->opts.flash_attn = false;
                build_graph(*e);
            }
        }
        e->info.flash_attn = e->opts.flash_attn ? 1 : 0;
        alloc_graph(*e);
        *out = e.release();
    });
}

void hp_encoder_free(hp_encoder * enc) { delete enc; }

void hp_encoder_get_info(const hp_encoder * enc, hp_encoder_info * info) {
    if (enc && info) *info = enc->info;
}

namespace {

// encode runs the main graph (the whole encoder, or with head its part up to
// the deep block's attention) and copies the outputs out.
void encode(hp_encoder * e, const float * img, int nx, int ny, int n_threads, int object_layer, int * used_layer, bool head,
            float * rows, float * object, float * deep) {
    if (!e || !img) throw hp::error(HP_ERR_ARG, "hp_encoder_encode: NULL argument");
    if (head && !e->fam->splits()) {
        throw hp::error(HP_ERR_UNSUP, hp::strfmt("projector type %s does not split its encoder", e->info.projector));
    }
    e->fam->dims(nx, ny); // throws on a size the family does not take
    const int obj = resolve_object_layer(e->file->path(), object_layer, e->info.object_layer, e->fam->n_run());
    if (obj - 1 != e->opts.object_block || nx != e->opts.nx || ny != e->opts.ny || head != e->opts.head) {
        const hp::graph_opts prev = e->opts;
        e->opts.object_block = obj - 1;
        e->opts.nx = nx;
        e->opts.ny = ny;
        e->opts.head = head;
        try {
            build_graph(*e);
            alloc_graph(*e);
        } catch (...) {
            e->opts = prev;
            build_graph(*e);
            alloc_graph(*e);
            throw;
        }
    }
    if (used_layer) *used_layer = obj;
    e->fam->set_inputs(e->gf, img, nx, ny, e->opts);
    // The CPU fallback, and a device that computes on the CPU too (it
    // exposes set_n_threads through its registry; a GPU does not).
    set_threads(e->backend_cpu, n_threads > 0 ? n_threads : e->n_threads);
    if (e->backend != e->backend_cpu) set_threads(e->backend, n_threads > 0 ? n_threads : e->n_threads);
    if (ggml_backend_sched_graph_compute(e->sched, e->gf) != GGML_STATUS_SUCCESS) {
        throw hp::error(HP_ERR_BACKEND, "encoder graph compute failed");
    }
    ggml_tensor * r = head ? e->out.hidden : e->out.embd;
    if (rows) ggml_backend_tensor_get(r, rows, 0, ggml_nbytes(r));
    if (object) ggml_backend_tensor_get(e->out.object, object, 0, ggml_nbytes(e->out.object));
    if (deep) ggml_backend_tensor_get(e->out.deep, deep, 0, ggml_nbytes(e->out.deep));
}

} // namespace

int hp_encoder_encode(hp_encoder * e, const float * img, int nx, int ny, int n_threads, int object_layer,
                      int * used_layer, float * embd, float * object, float * deep, char * err, size_t errlen) {
    return guarded(err, errlen, [&] { encode(e, img, nx, ny, n_threads, object_layer, used_layer, false, embd, object, deep); });
}

int hp_encoder_encode_scores(hp_encoder * e, const float * img, int nx, int ny, int n_threads, int object_layer,
                             int * used_layer, float * hidden, float * object, float * deep, char * err, size_t errlen) {
    return guarded(err, errlen, [&] { encode(e, img, nx, ny, n_threads, object_layer, used_layer, true, hidden, object, deep); });
}

int hp_encoder_project(hp_encoder * e, const float * hidden, int n, int n_threads, float * embd, char * err, size_t errlen) {
    return guarded(err, errlen, [&] {
        if (!e || !hidden || !embd) throw hp::error(HP_ERR_ARG, "hp_encoder_project: NULL argument");
        if (!e->fam->splits()) {
            throw hp::error(HP_ERR_UNSUP, hp::strfmt("projector type %s does not split its encoder", e->info.projector));
        }
        if (n < 1 || n > e->info.n_patches) {
            throw hp::error(HP_ERR_ARG, hp::strfmt("hp_encoder_project: %d rows, want 1..%d (the image's tokens)", n,
                                                   e->info.n_patches));
        }
        // ggml's CPU matmul computes fewer than 2 to 8 columns (by CPU and
        // weight type: llamafile_sgemm's thresholds) with another kernel,
        // which rounds differently from the tiled one the whole image's
        // rows take; padding to 8 rows (copies of the last) keeps the kept
        // rows bit for bit equal to hp_encoder_encode's.
        const int rows = std::max(n, 8);
        if (rows != e->tail_rows) build_tail(*e, rows);
        const size_t w = (size_t) e->info.n_embd;
        ggml_tensor * in = ggml_graph_get_tensor(e->gf_tail, "tail_in");
        ggml_backend_tensor_set(in, hidden, 0, (size_t) n * w * sizeof(float));
        for (int r = n; r < rows; r++) {
            ggml_backend_tensor_set(in, hidden + (size_t) (n - 1) * w, (size_t) r * w * sizeof(float), w * sizeof(float));
        }
        set_threads(e->backend_cpu, n_threads > 0 ? n_threads : e->n_threads);
        if (e->backend != e->backend_cpu) set_threads(e->backend, n_threads > 0 ? n_threads : e->n_threads);
        if (ggml_backend_sched_graph_compute(e->sched_tail, e->gf_tail) != GGML_STATUS_SUCCESS) {
            throw hp::error(HP_ERR_BACKEND, "encoder tail graph compute failed");
        }
        ggml_backend_tensor_get(e->tail_out, embd, 0, (size_t) n * (size_t) e->info.proj_dim * sizeof(float));
    });
}

} // extern "C"
