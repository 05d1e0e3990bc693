// Package hiprune selects which visual tokens of a ViT image encoder to keep,
// following HiPrune ("HiPrune: Training-Free Visual Token Pruning via
// Hierarchical Attention in Vision-Language Models", arXiv 2508.00553).
//
// The method needs no training because it reads what the vision encoder
// already knows. Attention in a ViT is hierarchical: a middle layer (the
// "object layer", layer 9 of CLIP ViT-L) concentrates on object parts, while
// the deepest layers spread attention onto a few tokens that carry global
// context. HiPrune therefore keeps three kinds of tokens within a budget N':
//
//   - anchors: the tokens that receive the most attention at the object
//     layer, so that the salient objects survive pruning;
//   - buffers: the four grid neighbours of every anchor, so that an object is
//     kept with its spatial surroundings rather than as isolated points
//     (true 4-neighbours inside the W x H grid, the paper's spatial
//     adjacency: the authors' code instead adds index -1, +1, -W and +W
//     clamped to [0, N-1], which wraps across row ends and adds token 0 or
//     N-1 for anchors on the first or last row, so masks can differ there);
//   - registers: the tokens that receive the most attention at the deep
//     layer, which summarise the rest of the image.
//
// The share of the budget spent on anchors is controlled by alpha: there are
// round(N' x alpha / 5) anchors, because an anchor together with its buffers
// takes up to five tokens. Everything is deterministic (ties go to the lower
// token index and rounding is half-to-even), so the same scores always give
// the same mask; that makes results reproducible and lets other
// implementations be checked against this one index by index.
//
// Scores reduces an attention tensor to the per-token score vector (the mean
// attention a token receives over heads and queries); Select applies the
// selection rule. Uniform and Random are the baselines HiPrune is compared
// against.
//
// The package is pure Go, uses only the standard library and does not
// allocate beyond its result on the hot path (see Selector).
package hiprune
