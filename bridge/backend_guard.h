// backend_guard.h: internal to the shim. The reason for the guard is at the
// top of backend_guard.cpp; its C functions are declared in bridge.h.
#pragma once

// While one is alive on a thread, GPU backends freed on that thread are
// freed only when the outermost scope ends.
struct hp_defer_scope {
    hp_defer_scope();
    ~hp_defer_scope();
    hp_defer_scope(const hp_defer_scope &) = delete;
    hp_defer_scope & operator=(const hp_defer_scope &) = delete;
};
