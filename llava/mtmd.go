package llava

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Every vision model llama.cpp runs can be used: projector types the
// instrumented encoder does not know (Qwen2-VL, SmolVLM, Pixtral, Janus-Pro,
// InternVL, MiniCPM-V, ...) run through llama.cpp's own multimodal path
// (mtmd), unpruned.

// Projector describes a pipeline's vision projector.
type Projector struct {
	Type   string // clip.projector_type as llama.cpp resolves it ("mlp", "gemma3", ...)
	Family string // the models that use it ("LLaVA-1.5 / NeXT", "Janus-Pro"); "" if llama.cpp does not know the type
	// Pruning says whether images can be pruned: the instrumented encoder
	// runs this projector. Otherwise llama.cpp's mtmd runs it, unpruned.
	Pruning bool
}

// String names the type and its family: `"gemma3" (Gemma 3)`.
func (pr Projector) String() string {
	if pr.Family == "" {
		return fmt.Sprintf("%q", pr.Type)
	}
	return fmt.Sprintf("%q (%s)", pr.Type, pr.Family)
}

func projectorOf(pi bridge.ProjectorInfo) Projector {
	return Projector{Type: pi.Type, Family: pi.Family, Pruning: pi.Encoder()}
}

// ReadProjector reads an mmproj's projector from its GGUF header only (no
// weights are loaded), so a caller can check options before Open.
func ReadProjector(mmproj string) (Projector, error) {
	pi, err := bridge.ReadProjector(mmproj)
	if err != nil {
		return Projector{}, err
	}
	return projectorOf(pi), nil
}

// PrunableProjectors lists the projector types whose images can be pruned,
// with their families: `"mlp" (LLaVA-1.5 / NeXT)`.
func PrunableProjectors() []string {
	var out []string
	for _, t := range bridge.EncoderProjectors() {
		out = append(out, projectorOf(bridge.ProjectorInfo{Type: t, Family: bridge.ProjectorFamily(t)}).String())
	}
	return out
}

// ErrNoPruning means pruning was asked of images whose projector runs
// through llama.cpp's mtmd. Errors that wrap it also wrap ErrOptions.
var ErrNoPruning = errors.New("pruning is not available for this projector")

// Projector describes the pipeline's mmproj (the zero value without one).
func (p *Pipeline) Projector() Projector {
	if p.cfg.MMProj == "" {
		return Projector{}
	}
	return projectorOf(p.proj)
}

// asksPruning reports whether o asks for pruning in so many words. The
// zero value asks for the default, which is no pruning where there is none.
func (o Options) asksPruning() bool {
	return (o.Method != "" && o.Method != MethodNone) || o.Keep != 0 || o.KeepRatio != 0 || o.Alpha != 0 || o.ObjectLayer != 0
}

// CheckPruning says whether o can be applied to this pipeline's images:
// any valid options where images can be pruned; elsewhere only the zero
// value or MethodNone (errors wrap ErrNoPruning and ErrOptions).
func (p *Pipeline) CheckPruning(o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if p.mtmd == nil || !o.asksPruning() {
		return nil
	}
	return fmt.Errorf("%w: %w: projector type %s runs unpruned through llama.cpp's mtmd (projector types that can be pruned: %s)",
		ErrOptions, ErrNoPruning, p.Projector(), strings.Join(PrunableProjectors(), ", "))
}

// openMtmd loads the mmproj with llama.cpp's mtmd, for a projector family
// the instrumented encoder does not run.
func (p *Pipeline) openMtmd() error {
	t0 := time.Now()
	x, err := bridge.OpenMtmd(p.cfg.MMProj, p.model, bridge.MtmdParams{Threads: p.cfg.Threads, UseGPU: p.cfg.EncoderGPU})
	if err != nil {
		return fmt.Errorf("projector type %s: %w", p.Projector(), err)
	}
	if !x.SupportsVision() {
		x.Close()
		return fmt.Errorf("mmproj %s: projector type %s has no vision encoder: %w", p.cfg.MMProj, p.Projector(), bridge.ErrUnsup)
	}
	p.mtmd = x
	// The type is left out on purpose: the caller tells the user once.
	p.log.Info("loaded vision projector through llama.cpp's mtmd (unpruned)", "path", p.cfg.MMProj,
		"ms", time.Since(t0).Milliseconds())
	return nil
}

// prefillMtmd is Prefill for a pipeline whose projector runs through mtmd.
// mtmd tokenizes the turn with its own image marker, adds the family's
// image delimiters (Qwen2-VL's <|vision_start|>, ...), slices images where
// the family does, and evaluates each chunk as llama.cpp does (M-RoPE
// positions for Qwen2-VL's images, ...); every image is kept whole.
// add is the turn's text with ImageMarker where images go.
func (s *Session) prefillMtmd(ctx context.Context, t Turn, add string, st *Stats) error {
	if err := s.p.CheckPruning(t.Prune); err != nil {
		return err
	}
	if len(t.Prepared) > 0 {
		return fmt.Errorf("%w: %w: prepared images come from the instrumented encoder; projector type %s runs through llama.cpp's mtmd",
			ErrOptions, ErrNoPruning, s.p.Projector())
	}
	marker := bridge.MtmdMarker()
	// mtmd also reads its deprecated marker as an image.
	for _, m := range []string{marker, "<__image__>"} {
		if strings.Contains(add, m) {
			return fmt.Errorf("%w: the message contains %s, which llama.cpp's mtmd reserves for images", ErrOptions, m)
		}
	}
	rgbs := make([]*imageprep.RGB, len(t.Images))
	for i, img := range t.Images {
		rgbs[i] = img.RGB
	}
	t0 := time.Now()
	// BOS goes first in the context, as mtmd puts it (before an image too).
	ch, err := s.p.mtmd.Tokenize(strings.ReplaceAll(add, ImageMarker, marker), rgbs, s.nPast == 0)
	if err != nil {
		return err
	}
	defer ch.Free()
	pre := time.Since(t0)
	n := ch.Len()
	stats := make([]ImageStats, len(t.Images))
	lastChunk := make([]int, len(t.Images))
	nText, nImage := 0, 0
	for i := range n {
		if !ch.IsImage(i) {
			nText += ch.NTokens(i)
			continue
		}
		k := ch.ImageIndex(i)
		if k < 0 || k >= len(stats) {
			return fmt.Errorf("mtmd: chunk %d has no image of this turn (id %d): %w", i, k, bridge.ErrBackend)
		}
		nImage += ch.NTokens(i)
		lastChunk[k] = i
	}
	if n == 0 || ch.IsImage(n-1) {
		return fmt.Errorf("%w: the prompt must end with text (the first answer token is sampled from its logits)", ErrOptions)
	}
	// Refuse a turn that cannot fit before any image is encoded.
	if need, room := nText+nImage, s.lctx.NCtx()-s.cells(); need > room {
		return fmt.Errorf("the message needs %d tokens (%d text, %d image) but the %d-token context has %d left: %w",
			need, nText, nImage, s.lctx.NCtx(), room, bridge.ErrContextFull)
	}
	for k, img := range t.Images {
		stats[k].Name = img.Name
	}
	if len(stats) > 0 {
		// mtmd preprocesses all of a turn's images in one call.
		stats[0].Preprocess = pre
	}
	s.p.encodes.Add(int64(len(t.Images)))
	checkpoint := s.nPast
	// Positions of mtmd's chunks are not described cell by cell, so
	// Session.Sync starts such a session afresh.
	s.kvOK, s.kv = false, s.kv[:0]
	for i := range n {
		var next int
		var ti bridge.MtmdTimings
		err := s.p.compute(ctx, func() (err error) {
			next, ti, err = s.p.mtmd.EvalChunk(s.lctx, ch, i, s.nPast, i == n-1)
			return err
		})
		if err != nil {
			// Leave the cache as it was before this turn.
			s.trim(checkpoint)
			if ch.IsImage(i) {
				err = fmt.Errorf("image %s: %w", stats[ch.ImageIndex(i)].Name, err)
			}
			return err
		}
		st.Prefill += ti.Prefill
		st.TextTokens += ti.TextTokens
		st.ImageTokens += ti.ImageTokens
		if ch.IsImage(i) {
			// An M-RoPE image takes fewer positions than KV cells.
			if ti.ImageTokens != next-s.nPast {
				s.spans = append(s.spans, span{pos0: s.nPast, npos: next - s.nPast, ncells: ti.ImageTokens})
			}
			k := ch.ImageIndex(i)
			stats[k].TokensBefore += ti.ImageTokens
			stats[k].TokensAfter += ti.ImageTokens
			stats[k].Encode += ti.Encode
			if i == lastChunk[k] {
				st.Images = append(st.Images, stats[k])
				if t.OnImage != nil {
					t.OnImage(stats[k])
				}
			}
		}
		s.nPast = next
	}
	st.KVImageBytes = int64(st.ImageTokens) * s.lctx.KVBytesPerCell()
	st.KVCells = s.cells()
	return nil
}
