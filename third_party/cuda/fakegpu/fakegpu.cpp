// fakegpu.cpp: a ggml backend library for checking, on a machine without a
// GPU, the path a GPU backend takes through hiprune-go. It is a test device,
// never shipped.
//
// It registers one device of type GPU, "FakeGPU0", built the way
// libggml-cuda.so is (a module linking libggml-base.so, loaded by ggml's
// registry with dlopen), that behaves towards ggml's scheduler like a GPU:
//   - its buffer type is not a host buffer type, so weights are uploaded
//     through set_tensor, results read back through get_tensor, and the
//     scheduler copies graph inputs and outputs between it and the CPU;
//   - it accepts only its own buffers (supports_buft), as a GPU does.
// The memory is ordinary host memory and the arithmetic is ggml's CPU
// backend, taken from the CPU backend module (libggml-cpu.so) in the same
// folder, so results equal the CPU's up to the thread split.
//
// Load it with GGML_BACKEND_PATH=/path/libggml-fakegpu.so (read by ggml's
// ggml_backend_load_all_from_path, which ollama's OnceLoad calls).
#include "ggml-backend-impl.h"
#include "ggml-impl.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>

namespace {

constexpr const char * k_name = "FakeGPU0";
constexpr size_t k_alignment = 128;
constexpr size_t k_memory = size_t(8) << 30; // what it reports; allocations are not limited

// ---- the CPU backend module it computes with ---------------------------------

struct cpu_module {
    ggml_backend_reg_t reg = nullptr;
    ggml_backend_dev_t dev = nullptr;
    ggml_backend_set_n_threads_t set_n_threads = nullptr;
};

int g_anchor; // an address inside this library, for dladdr

const cpu_module & cpu() {
    static const cpu_module m = [] {
        cpu_module m;
        Dl_info info{};
        if (!dladdr(&g_anchor, &info) || !info.dli_fname) {
            GGML_LOG_ERROR("fakegpu: cannot find its own path\n");
            return m;
        }
        std::string path(info.dli_fname);
        const size_t slash = path.rfind('/');
        path = (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/libggml-cpu.so";
        void * h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            GGML_LOG_ERROR("fakegpu: cannot load %s: %s\n", path.c_str(), dlerror());
            return m;
        }
        auto init = (ggml_backend_init_t) dlsym(h, "ggml_backend_init");
        m.reg = init ? init() : nullptr;
        if (!m.reg || ggml_backend_reg_dev_count(m.reg) == 0) {
            GGML_LOG_ERROR("fakegpu: %s registers no CPU device\n", path.c_str());
            m.reg = nullptr;
            return m;
        }
        m.dev = ggml_backend_reg_dev_get(m.reg, 0);
        m.set_n_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(m.reg, "ggml_backend_set_n_threads");
        return m;
    }();
    return m;
}

// ---- buffers: host memory behind a non-host buffer type ----------------------

struct buffer_ctx {
    void * data;
};

void buf_free(ggml_backend_buffer_t b) {
    auto * ctx = (buffer_ctx *) b->context;
    std::free(ctx->data);
    delete ctx;
}

void * buf_base(ggml_backend_buffer_t b) { return ((buffer_ctx *) b->context)->data; }

void buf_memset(ggml_backend_buffer_t, ggml_tensor * t, uint8_t v, size_t off, size_t n) {
    std::memset((char *) t->data + off, v, n);
}

void buf_set(ggml_backend_buffer_t, ggml_tensor * t, const void * src, size_t off, size_t n) {
    std::memcpy((char *) t->data + off, src, n);
}

void buf_get(ggml_backend_buffer_t, const ggml_tensor * t, void * dst, size_t off, size_t n) {
    std::memcpy(dst, (const char *) t->data + off, n);
}

ggml_backend_buffer_type * fake_buft();

// Device-to-device copies only, as a GPU backend does; the scheduler falls
// back to set_tensor/get_tensor for the rest.
bool buf_cpy(ggml_backend_buffer_t, const ggml_tensor * src, ggml_tensor * dst) {
    if (src->buffer && src->buffer->buft == fake_buft()) {
        std::memcpy(dst->data, src->data, ggml_nbytes(src));
        return true;
    }
    return false;
}

void buf_clear(ggml_backend_buffer_t b, uint8_t v) { std::memset(buf_base(b), v, b->size); }

const ggml_backend_buffer_i k_buffer_i = {
    /* .free_buffer   = */ buf_free,
    /* .get_base      = */ buf_base,
    /* .init_tensor   = */ nullptr,
    /* .memset_tensor = */ buf_memset,
    /* .set_tensor    = */ buf_set,
    /* .get_tensor    = */ buf_get,
    /* .cpy_tensor    = */ buf_cpy,
    /* .clear         = */ buf_clear,
    /* .reset         = */ nullptr,
};

const char * buft_name(ggml_backend_buffer_type_t) { return k_name; }

ggml_backend_buffer_t buft_alloc(ggml_backend_buffer_type_t buft, size_t size) {
    const size_t n = (size + k_alignment - 1) / k_alignment * k_alignment + k_alignment;
    void * data = std::aligned_alloc(k_alignment, n);
    if (!data) {
        GGML_LOG_ERROR("fakegpu: cannot allocate %zu bytes\n", size);
        return nullptr;
    }
    return ggml_backend_buffer_init(buft, k_buffer_i, new buffer_ctx{data}, size);
}

size_t buft_alignment(ggml_backend_buffer_type_t) { return k_alignment; }

ggml_backend_dev_t fake_dev();

ggml_backend_buffer_type * fake_buft() {
    static ggml_backend_buffer_type buft = {
        /* .iface = */ {
            /* .get_name       = */ buft_name,
            /* .alloc_buffer   = */ buft_alloc,
            /* .get_alignment  = */ buft_alignment,
            /* .get_max_size   = */ nullptr,
            /* .get_alloc_size = */ nullptr,
            /* .is_host        = */ nullptr, // not host memory, as far as ggml knows
            /* .noalloc_buffer = */ nullptr,
        },
        /* .device   = */ fake_dev(),
        /* .context  = */ nullptr,
        /* .no_alloc = */ false,
    };
    return &buft;
}

// ---- the backend (stream) ------------------------------------------------------

struct backend_ctx {
    ggml_backend_t cpu;
    std::atomic<long> graphs{0}, nodes{0};
};

ggml_guid_t fake_guid() {
    static ggml_guid guid = {0x68, 0x69, 0x70, 0x72, 0x75, 0x6e, 0x65, 0x2d, 0x66, 0x61, 0x6b, 0x65, 0x67, 0x70, 0x75, 0x30};
    return &guid;
}

const char * be_name(ggml_backend_t) { return k_name; }

// Backends not yet freed. A freed backend's struct is kept (never deleted),
// so that a call through it after its free, such as the reset ollama's
// ggml_backend_sched_free makes on every backend of a scheduler, reaches
// be_reset and aborts with a message instead of being undefined behaviour.
std::mutex live_mu;
std::unordered_set<ggml_backend_t> live;

void be_free(ggml_backend_t b) {
    auto * ctx = (backend_ctx *) b->context;
    GGML_LOG_INFO("fakegpu: %s computed %ld graphs, %ld nodes\n", k_name, ctx->graphs.load(), ctx->nodes.load());
    ggml_backend_free(ctx->cpu);
    delete ctx;
    std::lock_guard<std::mutex> lock(live_mu);
    live.erase(b);
    b->context = nullptr; // the struct itself stays, as a tombstone
}

// As CUDA's reset (it drops the backend's memory pools), it needs a live
// backend.
void be_reset(ggml_backend_t b) {
    std::lock_guard<std::mutex> lock(live_mu);
    if (!live.count(b)) {
        GGML_ABORT("fakegpu: reset of a freed backend (a scheduler freed after its backends)");
    }
}

ggml_status be_compute(ggml_backend_t b, ggml_cgraph * g, int batch_size) {
    auto * ctx = (backend_ctx *) b->context;
    ctx->graphs++;
    ctx->nodes += ggml_graph_n_nodes(g);
    return ctx->cpu->iface.graph_compute(ctx->cpu, g, batch_size);
}

const ggml_backend_i k_backend_i = {
    /* .get_name           = */ be_name,
    /* .free               = */ be_free,
    /* .set_tensor_async   = */ nullptr,
    /* .get_tensor_async   = */ nullptr,
    /* .cpy_tensor_async   = */ nullptr,
    /* .synchronize        = */ nullptr,
    /* .graph_plan_create  = */ nullptr,
    /* .graph_plan_free    = */ nullptr,
    /* .graph_plan_update  = */ nullptr,
    /* .graph_plan_compute = */ nullptr,
    /* .graph_compute      = */ be_compute,
    /* .event_record       = */ nullptr,
    /* .event_wait         = */ nullptr,
    /* .graph_optimize     = */ nullptr,
    /* .graph_reserve      = */ nullptr,
    /* .buffer_size        = */ nullptr,
    /* .reset              = */ be_reset,
};

// llama.cpp and our encoder set threads through the registry's
// ggml_backend_set_n_threads; pass them on to the CPU backend inside.
void set_n_threads(ggml_backend_t b, int n) {
    if (!b || !ggml_guid_matches(b->guid, fake_guid())) return;
    if (cpu().set_n_threads) cpu().set_n_threads(((backend_ctx *) b->context)->cpu, n);
}

// ---- the device ------------------------------------------------------------------

const char * dev_name(ggml_backend_dev_t) { return k_name; }
const char * dev_desc(ggml_backend_dev_t) { return "hiprune-go test device (host memory, ggml CPU kernels)"; }

void dev_memory(ggml_backend_dev_t, size_t * free, size_t * total) {
    *free = k_memory;
    *total = k_memory;
}

enum ggml_backend_dev_type dev_type(ggml_backend_dev_t) { return GGML_BACKEND_DEVICE_TYPE_GPU; }

void dev_props(ggml_backend_dev_t dev, ggml_backend_dev_props * p) {
    std::memset(p, 0, sizeof(*p));
    p->name = dev_name(dev);
    p->description = dev_desc(dev);
    p->id = "fakegpu-0";
    p->library = "FakeGPU";
    p->type = GGML_BACKEND_DEVICE_TYPE_GPU;
    dev_memory(dev, &p->memory_free, &p->memory_total);
}

ggml_backend_t dev_init(ggml_backend_dev_t dev, const char *) {
    if (!cpu().dev) return nullptr;
    ggml_backend_t inner = ggml_backend_dev_init(cpu().dev, nullptr);
    if (!inner) return nullptr;
    auto * ctx = new backend_ctx;
    ctx->cpu = inner;
    auto * b = new ggml_backend{fake_guid(), k_backend_i, dev, ctx};
    std::lock_guard<std::mutex> lock(live_mu);
    live.insert(b);
    return b;
}

ggml_backend_buffer_type_t dev_buft(ggml_backend_dev_t) { return fake_buft(); }

bool dev_supports_op(ggml_backend_dev_t, const ggml_tensor * op) {
    return cpu().dev && ggml_backend_dev_supports_op(cpu().dev, op);
}

bool dev_supports_buft(ggml_backend_dev_t, ggml_backend_buffer_type_t buft) { return buft == fake_buft(); }

const ggml_backend_device_i k_device_i = {
    /* .get_name             = */ dev_name,
    /* .get_description      = */ dev_desc,
    /* .get_memory           = */ dev_memory,
    /* .get_type             = */ dev_type,
    /* .get_props            = */ dev_props,
    /* .init_backend         = */ dev_init,
    /* .get_buffer_type      = */ dev_buft,
    /* .get_host_buffer_type = */ nullptr,
    /* .buffer_from_host_ptr = */ nullptr,
    /* .supports_op          = */ dev_supports_op,
    /* .supports_buft        = */ dev_supports_buft,
    /* .offload_op           = */ nullptr,
    /* .event_new            = */ nullptr,
    /* .event_free           = */ nullptr,
    /* .event_synchronize    = */ nullptr,
    /* .reset                = */ nullptr,
};

// ---- the registration ----------------------------------------------------------

ggml_backend_reg * fake_reg();

ggml_backend_dev_t fake_dev() {
    static ggml_backend_device dev = {k_device_i, fake_reg(), nullptr};
    return &dev;
}

const char * reg_name(ggml_backend_reg_t) { return "FakeGPU"; }
size_t reg_count(ggml_backend_reg_t) { return cpu().dev ? 1 : 0; }
ggml_backend_dev_t reg_get(ggml_backend_reg_t, size_t i) { return i == 0 && cpu().dev ? fake_dev() : nullptr; }

void * reg_proc(ggml_backend_reg_t, const char * name) {
    if (std::strcmp(name, "ggml_backend_set_n_threads") == 0) return (void *) set_n_threads;
    return nullptr;
}

ggml_backend_reg * fake_reg() {
    static ggml_backend_reg reg = {GGML_BACKEND_API_VERSION, {reg_name, reg_count, reg_get, reg_proc}, nullptr};
    return &reg;
}

} // namespace

// Says hello at registration, as CUDA's backend announces its devices: the
// check that such start-up lines go through the host's logger.
static ggml_backend_reg_t ggml_backend_fakegpu_reg() {
    GGML_LOG_INFO("fakegpu: %s registered, computing with %s\n", k_name, cpu().dev ? "the CPU module" : "nothing");
    return fake_reg();
}

GGML_BACKEND_DL_IMPL(ggml_backend_fakegpu_reg)
