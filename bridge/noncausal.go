package bridge

/*
#include "llama.h"
*/
import "C"

import "fmt"

// DecodeEmbeddingsNonCausal evaluates n rows of embd (each NEmbd wide) at
// consecutive positions pos0.. in one batch with causal attention off, as
// mtmd does for a Gemma 3 image (mtmd_helper_decode_image_chunk with
// mtmd_decode_use_non_causal): every row attends to every other row of the
// batch and to all the sequence's earlier cells, whatever their positions.
// Causal attention is back on when it returns, error or not. The rows must
// fit one physical batch: llama.cpp asserts (aborts) on a non-causal batch
// larger than n_ubatch, and a batch split in several decodes would let
// earlier rows miss later ones, so more rows than min(NBatch, n_ubatch)
// are refused (ErrArg). No logits are computed.
func (c *Context) DecodeEmbeddingsNonCausal(embd []float32, pos0 int) error {
	if len(embd) == 0 || len(embd)%c.nEmbd != 0 {
		return fmt.Errorf("decode: %d floats is not a positive whole number of %d-wide embeddings: %w", len(embd), c.nEmbd, ErrArg)
	}
	n := len(embd) / c.nEmbd
	if lim := min(c.nBatch, int(C.llama_n_ubatch(c.c))); n > lim {
		return fmt.Errorf("decode: %d embeddings with non-causal attention need one batch, the context's holds %d (raise the batch and micro-batch sizes): %w",
			n, lim, ErrArg)
	}
	C.llama_set_causal_attn(c.c, false)
	defer C.llama_set_causal_attn(c.c, true)
	return c.DecodeEmbeddings(embd, pos0, false)
}
