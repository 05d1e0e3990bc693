package llava

import (
	"context"
	"fmt"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Qwen2.5-VL images (projector type qwen2.5vl_merger), as llama.cpp's mtmd
// runs them, with the tokens pruned in between:
//
//   - Preprocessing: the smart resize to multiples of 28 px within the
//     file's pixel limits (imageprep.PreprocessDynamic), so an image of
//     W x H pixels becomes (W'/28) x (H'/28) merged tokens, each the merger's
//     output for a 2 x 2 group of 14 px patches.
//   - Scores: the encoder's per-patch attention at the object layer (16 by
//     default) and the last block, averaged over each token's 2 x 2 patches
//     (bridge.Encoding.Object and Deep); selection runs on the merged grid,
//     whose width and height follow the image. The budget is a ratio of the
//     image's tokens (DefaultKeepRatioQwen), rounded half to even as the
//     authors' code rounds it; Options.Keep is a count as for LLaVA.
//   - Prompt: mtmd writes <|vision_start|> before and <|vision_end|> after
//     each image, tokenized on their own with special tokens parsed; the
//     pipeline adds the same tokens around each ImageMarker.
//   - Positions: the language model uses M-RoPE. mtmd gives token (x, y) of
//     an nx x ny image starting at position p the position (time p, row
//     p+y, column p+x) and the text after it p + max(nx, ny)
//     (bridge.MtmdImagePositions). A pruned image's kept tokens keep the
//     positions they have in the whole image, and the text after it starts
//     where it would after the whole image, so the language model sees each
//     kept token where llama.cpp would have put it.
//   - KV cells: an image takes one cell per kept token but max(nx, ny)
//     positions. The session counts both (a turn must fit in each), and
//     records, for Session.Sync, which image each of its positions belongs
//     to, so a resent conversation reuses a Qwen image as it does a LLaVA one.

const projQwen25VL = "qwen2.5vl_merger"

// setFamily sets what the pipeline needs to know about the projector
// family from the opened encoder: dynamic preprocessing, M-RoPE image
// positions, image delimiters, non-causal image attention.
func (p *Pipeline) setFamily(in bridge.EncoderInfo) error {
	p.mrope = p.model.UsesMRoPE()
	dp, dynamic := in.DynamicParams()
	switch {
	case dynamic && !p.mrope:
		return fmt.Errorf("mmproj %s: projector type %s places its image tokens by row and column (M-RoPE), but the language model %s does not use M-RoPE: %w",
			p.cfg.MMProj, p.Projector(), p.cfg.Model, ErrMismatch)
	case !dynamic && p.mrope:
		return fmt.Errorf("the language model %s uses M-RoPE positions, which projector type %s does not give its image tokens: %w",
			p.cfg.Model, p.Projector(), ErrMismatch)
	}
	p.dyn, p.dynamic = dp, dynamic
	p.imgBeg, p.imgEnd = imageDelimiters(p.proj.Type)
	p.nonCausal = nonCausalImages(p.proj.Type)
	return nil
}

// DynamicParams are the preprocessing parameters of a dynamic-resolution
// projector (Qwen2.5-VL); ok is false for the others.
func (p *Pipeline) DynamicParams() (dp imageprep.DynamicParams, ok bool) {
	return p.dyn, p.dynamic
}

// imageSpan is what img takes in the context under o, known before any
// encoding: KV cells (the kept tokens) and positions (the same count, or
// max(nx, ny) for an M-RoPE image).
func (p *Pipeline) imageSpan(img *Image, o Options) (cells, positions int) {
	if !p.dynamic {
		n := p.imageTokens(img, o)
		return n, n
	}
	if img == nil || img.RGB == nil {
		return 0, 0
	}
	sz, err := imageprep.SmartResize(img.RGB.W, img.RGB.H, p.dyn)
	if err != nil {
		return 0, 0 // the encode reports it
	}
	a := p.dyn.Align()
	nx, ny := sz.W/a, sz.H/a
	return o.budgetQwen(nx * ny), max(nx, ny)
}

// prunedSpan is imageSpan for an image already pruned.
func (p *Pipeline) prunedSpan(pr *Pruned) (cells, positions int) {
	if p.mrope {
		return len(pr.Kept), max(pr.GridW, pr.GridH)
	}
	return len(pr.Kept), len(pr.Kept)
}

// span is an image whose KV cells are not one per position: npos
// positions from pos0 holding ncells cells (M-RoPE images).
type span struct{ pos0, npos, ncells int }

// gap is how many more KV cells than positions the context's images take
// (negative when a pruned M-RoPE image keeps fewer tokens than its side).
func (s *Session) gap() int {
	g := 0
	for _, sp := range s.spans {
		g += sp.ncells - sp.npos
	}
	return g
}

// cells is the number of KV cells the conversation occupies: its positions,
// corrected by what M-RoPE images hold beyond (or short of) theirs. (Not
// llama.cpp's span of positions: a context may end with an M-RoPE image,
// whose cells all sit at its first position.)
func (s *Session) cells() int { return s.nPast + s.gap() }

// evalMRoPE evaluates a pruned image's kept rows at the M-RoPE positions
// its tokens have in the whole image starting at the next position, in
// batches of the context's size (as mtmd's helper sends an image), and
// moves the next position past the whole image.
func (s *Session) evalMRoPE(ctx context.Context, pr *Pruned, key string, logits bool) error {
	w := s.p.model.NEmbd()
	n := len(pr.Kept)
	if pr.GridW < 1 || pr.GridH < 1 || len(pr.Embd) != n*w || n == 0 {
		return fmt.Errorf("%w: image %s: %d rows of %d floats for %d kept tokens of a %d x %d grid",
			ErrOptions, pr.Name, len(pr.Embd)/max(w, 1), w, n, pr.GridW, pr.GridH)
	}
	all, next := bridge.MtmdImagePositions(s.nPast, pr.GridW, pr.GridH)
	pos := make([]bridge.MRoPEPos, n)
	for j, i := range pr.Kept {
		if i < 0 || i >= len(all) || (j > 0 && i <= pr.Kept[j-1]) {
			return fmt.Errorf("%w: image %s: kept token %d is not an ascending index of its %d x %d grid",
				ErrOptions, pr.Name, i, pr.GridW, pr.GridH)
		}
		pos[j] = all[i]
	}
	nb := s.lctx.NBatch()
	for off := 0; off < n; off += nb {
		k := min(nb, n-off)
		err := s.p.compute(ctx, func() error {
			return s.lctx.DecodeEmbeddingsMRoPE(pr.Embd[off*w:(off+k)*w], pos[off:off+k], logits && off+k == n)
		})
		if err != nil {
			return err
		}
	}
	// Sync matches an image position by position: each of the positions
	// the image spans is recorded as one of its rows.
	for r := 0; r < next-s.nPast; r++ {
		s.record(cell{img: key, row: int32(r)})
	}
	s.spans = append(s.spans, span{pos0: s.nPast, npos: next - s.nPast, ncells: n})
	s.nPast = next
	return nil
}
