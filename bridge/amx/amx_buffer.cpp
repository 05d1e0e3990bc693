// ggml's AMX buffer type, as the pinned module has it (see amx.go).
#include "amx/amx.cpp"
