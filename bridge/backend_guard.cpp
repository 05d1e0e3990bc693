// Keeps GPU backends alive until the llama.cpp object that owns them is
// completely freed.
//
// Why: ollama's patched ggml_backend_sched_free (ggml-backend.cpp, "Enable
// resetting backend devices") calls backend->iface.reset on every backend of
// the scheduler. llama.cpp's llama_context and clip_ctx free their backends
// before their scheduler (llama_context declares `sched` before `backends`;
// ~clip_ctx frees the backends in its body, the scheduler member after), so
// for a backend that has a reset (CUDA's clears its memory pools) that call
// runs on freed memory: the process crashed in llama_free and clip_free on an
// H100. CPU backends have no reset, which is why no CPU run ever showed it.
//
// How: hp_guard_gpu_backends wraps the init_backend of every non-CPU device
// the registry knows, so each backend it creates gets a free that, inside an
// hp_defer_scope on the same thread, only queues the backend; the scope's end
// frees the queue, after the owner's scheduler is gone. Outside a scope the
// free is immediate. The devices' interface tables belong to the backend
// libraries and live as long as the process, as the registry does.
#include "backend_guard.h"
#include "bridge.h"

#include <mutex>
#include <unordered_map>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"
#include "mtmd.h"
#include "../third_party/include/ggml-src/ggml-backend-impl.h"

namespace {

using init_fn = ggml_backend_t (*)(ggml_backend_dev_t, const char *);
using free_fn = void (*)(ggml_backend_t);

std::mutex g_mu;                                     // guards both maps
std::unordered_map<ggml_backend_dev_t, init_fn> g_init; // device -> its own init_backend
std::unordered_map<ggml_backend_t, free_fn> g_free;     // live wrapped backend -> its own free

thread_local int t_depth = 0;
thread_local std::vector<ggml_backend_t> t_pending;

void free_now(ggml_backend_t b) {
    free_fn orig = nullptr;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_free.find(b);
        if (it != g_free.end()) {
            orig = it->second;
            g_free.erase(it);
        }
    }
    if (orig) orig(b);
}

void guarded_free(ggml_backend_t b) {
    if (t_depth > 0) {
        t_pending.push_back(b);
        return;
    }
    free_now(b);
}

ggml_backend_t guarded_init(ggml_backend_dev_t dev, const char * params) {
    init_fn orig;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        orig = g_init.at(dev);
    }
    ggml_backend_t b = orig(dev, params);
    if (b && b->iface.free) {
        std::lock_guard<std::mutex> lock(g_mu);
        g_free[b] = b->iface.free;
        b->iface.free = guarded_free;
    }
    return b;
}

} // namespace

hp_defer_scope::hp_defer_scope() { t_depth++; }

hp_defer_scope::~hp_defer_scope() {
    if (--t_depth > 0) return;
    std::vector<ggml_backend_t> pending;
    pending.swap(t_pending);
    for (ggml_backend_t b : pending) free_now(b);
}

extern "C" int hp_guard_gpu_backends(void) {
    std::lock_guard<std::mutex> lock(g_mu);
    int n = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU) continue;
        if (dev->iface.init_backend == guarded_init) {
            n++;
            continue;
        }
        if (!dev->iface.init_backend) continue;
        g_init[dev] = dev->iface.init_backend;
        dev->iface.init_backend = guarded_init;
        n++;
    }
    return n;
}

extern "C" void hp_llama_free(struct llama_context * ctx) {
    hp_defer_scope scope;
    llama_free(ctx);
}

extern "C" void hp_mtmd_free(struct mtmd_context * ctx) {
    hp_defer_scope scope;
    mtmd_free(ctx);
}
