package bridge

/*
#include "llama.h"
*/
import "C"

import "fmt"

// DecodeEmbeddingsNonCausal evaluates n rows of embd (each NEmbd wide) at
// consecutive positions pos0.. with causal attention off, as mtmd decodes
// a Gemma 3 image (mtmd_helper_decode_image_chunk when
// mtmd_decode_use_non_causal): in batches of NBatch rows, each row
// attending to every row of its batch and to all the sequence's earlier
// cells, whatever their positions (so with n <= NBatch, the usual case,
// every row sees every other). Causal attention is back on when it
// returns, error or not. llama.cpp asserts (aborts) on a non-causal batch
// larger than its micro-batch, which mtmd does not guard against: a batch
// of more than n_ubatch rows is refused here (ErrArg). No logits are
// computed.
func (c *Context) DecodeEmbeddingsNonCausal(embd []float32, pos0 int) error {
	if len(embd) == 0 || len(embd)%c.nEmbd != 0 {
		return fmt.Errorf("decode: %d floats is not a positive whole number of %d-wide embeddings: %w", len(embd), c.nEmbd, ErrArg)
	}
	n := len(embd) / c.nEmbd
	if batch, ub := min(n, c.nBatch), int(C.llama_n_ubatch(c.c)); batch > ub {
		return fmt.Errorf("decode: a non-causal batch of %d embeddings must fit the context's %d-token micro-batch (raise it to the batch size): %w",
			batch, ub, ErrArg)
	}
	C.llama_set_causal_attn(c.c, false)
	defer C.llama_set_causal_attn(c.c, true)
	return c.DecodeEmbeddings(embd, pos0, false)
}
