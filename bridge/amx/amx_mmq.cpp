// ggml's AMX matrix-multiplication kernels, as the pinned module has them
// (see amx.go).
#include "amx/mmq.cpp"
