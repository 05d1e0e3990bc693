package llava

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/internal/fsutil"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// Config says which models to load and how.
type Config struct {
	Model  string // language model GGUF
	MMProj string // vision projector GGUF; "" for a text-only pipeline
	// Threads for the encoder and the LM; 0 = number of CPUs (MaxThreads),
	// which is also the most used.
	Threads int
	// GPULayers is llama.cpp's -ngl: LM layers offloaded to a GPU device.
	GPULayers int
	// EncoderGPU runs the vision encoder on a GPU device when ggml has one.
	EncoderGPU bool
	// Layout is the encoder's token order; the zero value is CLIP's own
	// (class token first). LayoutLlamaCpp reproduces the pinned llama.cpp's
	// clip bit for bit.
	Layout Layout
	// ObjectLayer is the probed layer when Options leave it 0 (0 = the
	// family's: 9 for CLIP, or the deep layer for encoders that run fewer
	// blocks; 16 for Qwen2.5-VL).
	ObjectLayer int
	// EncoderWeights is the type the encoder's matrix weights are converted
	// to at load: "" keeps the file's (f16 in the usual mmproj), or "f16",
	// "q8_0", "q4_0". Quantized weights change the embeddings slightly (see
	// the README's Performance and Accuracy sections for what it costs and
	// buys); the unpruned families llama.cpp's mtmd runs take only "".
	EncoderWeights string
	// EncoderFlashAttn chooses flash attention in the vision encoder.
	// FlashAttnAuto (the zero value) turns it on where the device supports
	// it, except for CLIP encoders (LLaVA) on the CPU, where plain
	// attention is faster (about 9% of the encode at 577 tokens).
	// FlashAttnOn reproduces llama.cpp's mtmd on the CPU bit for bit (with
	// LayoutLlamaCpp); the two differ by float rounding only.
	EncoderFlashAttn FlashAttn
	// NoRepack keeps the weights of the LM and the encoder in ggml's plain
	// CPU buffer (llama.cpp's --no-repack). By default, on the CPU, ggml
	// repacks quantized matrix weights into the layouts its int8 kernels
	// read fastest (Q4_0 on AVX2 and arm64 dotprod, AMX where the build
	// targets it), as llama.cpp does for an LM; llama.cpp's clip never
	// does it for an encoder. The answers differ by float rounding only.
	NoRepack bool
	// ImageLimits guard image decoding (zero value: imageprep.DefaultLimits).
	ImageLimits imageprep.Limits
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// ImageCacheBytes bounds the cache of encoded and pruned images that
	// the pipeline's sessions share: an image sent again with the same
	// pruning options (an OpenAI-style client resending the conversation,
	// a second session asking about it) is not encoded again. 0 turns the
	// cache off; the bound counts the kept rows' size.
	ImageCacheBytes int64
	// Parallel bounds how many encodes and LM evaluations of this
	// pipeline's sessions run at once (0 = 1). Each already uses every
	// thread it is given, so on a CPU more only makes them thrash; sessions
	// still interleave, token by token.
	Parallel int
}

// CheckEncoderWeights says whether Config.EncoderWeights would take s,
// for callers that check their options before loading anything.
func CheckEncoderWeights(s string) error {
	_, err := encoderWeights(s)
	return err
}

func encoderWeights(s string) (bridge.Weights, error) {
	w, ok := bridge.ParseWeights(s)
	if !ok {
		return 0, &OptionError{"encoder-type", s, "want " + strings.Join(bridge.WeightNames(), ", ")}
	}
	return w, nil
}

// Pipeline is a loaded model pair.
type Pipeline struct {
	bufs    sync.Pool // *bridge.Encoding buffers, reused across images
	cache   *imageCache
	encodes atomic.Int64 // images run through the vision encoder
	// life is held shared by every call that uses the models and
	// exclusively by Close, which waits for them; closing refuses new ones.
	life     sync.RWMutex
	closing  atomic.Bool
	mu       sync.Mutex
	sessions map[*Session]struct{}

	sem    *semaphore.Weighted
	cfg    Config
	model  *bridge.Model
	enc    *bridge.Encoder
	mtmd   *bridge.Mtmd // set instead of enc for projectors the encoder does not run (mtmd.go)
	proj   bridge.ProjectorInfo
	params imageprep.Params
	log    *slog.Logger
	// newline is model.image_newline (LLaVA-NeXT), nil otherwise.
	newline []float32
	// dyn is the preprocessing of a dynamic-resolution encoder (Qwen2.5-VL);
	// dynamic says it applies (qwen.go).
	dyn     imageprep.DynamicParams
	dynamic bool
	// mrope: the language model places image tokens by M-RoPE (time, row,
	// column) positions.
	mrope bool
	// imgBeg and imgEnd are the texts mtmd puts around each image for the
	// family ("" for LLaVA).
	imgBeg, imgEnd string
	// nonCausal: image tokens attend to each other both ways (Gemma 3).
	nonCausal bool
	// split: a single-view image is encoded up to the deep block's
	// attention, and the rest (the deep block's MLP and the projector) runs
	// for the kept tokens only (bridge.EncoderInfo.Split), on the CPU.
	split bool
}

// ErrNoVision means an image was given to a pipeline without a projector.
var ErrNoVision = errors.New("model has no vision projector")

// ErrMismatch means the projector does not fit the language model.
var ErrMismatch = errors.New("projector does not match the language model")

// MaxThreads is the most compute threads a pipeline uses: the CPUs this
// process may run on. Config.Threads above it is capped.
func MaxThreads() int { return runtime.NumCPU() }

// Open loads the language model and, if given, the projector.
func Open(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// ggml's worker threads spin while they wait: more threads than CPUs
	// only slow every step down (1,000 threads on 2 CPUs ran for minutes).
	if n := MaxThreads(); cfg.Threads > n {
		log.Warn("more threads than CPUs; capping", "threads", cfg.Threads, "cpus", n)
		cfg.Threads = n
	}
	if cfg.ImageLimits.MaxPixels == 0 && cfg.ImageLimits.MaxBytes == 0 {
		cfg.ImageLimits = imageprep.DefaultLimits
	}
	if cfg.Model == "" {
		return nil, fmt.Errorf("model: no path given: %w", ErrOptions)
	}
	if !cfg.EncoderFlashAttn.Valid() {
		return nil, &OptionError{"encoder-flash-attn", cfg.EncoderFlashAttn, "want auto, on or off"}
	}
	weights, err := encoderWeights(cfg.EncoderWeights)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ what, path string }{{"model", cfg.Model}, {"mmproj", cfg.MMProj}} {
		if f.path == "" {
			continue
		}
		if err := fsutil.CheckInput(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.what, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	p := &Pipeline{cfg: cfg, log: log, sem: semaphore.NewWeighted(int64(cfg.Parallel)),
		cache: newImageCache(cfg.ImageCacheBytes), sessions: map[*Session]struct{}{}}
	t0 := time.Now()
	m, err := bridge.LoadModel(cfg.Model, bridge.ModelParams{GPULayers: cfg.GPULayers, NoRepack: cfg.NoRepack})
	if err != nil {
		return nil, err
	}
	p.model = m
	log.Info("loaded language model", "path", cfg.Model, "desc", m.Desc(), "n_embd", m.NEmbd(), "ms", time.Since(t0).Milliseconds())
	if cfg.MMProj != "" {
		pi, err := bridge.ReadProjector(cfg.MMProj)
		if err != nil {
			m.Close()
			return nil, err
		}
		p.proj = pi
		if pi.Vision && !pi.Known() {
			m.Close()
			return nil, fmt.Errorf("mmproj %s: projector type %q is not one llama.cpp knows (%s can be pruned; llama.cpp's other vision projectors run unpruned): %w",
				cfg.MMProj, pi.Type, strings.Join(PrunableProjectors(), ", "), bridge.ErrUnsup)
		}
		// A vision family llama.cpp knows and our encoder does not: run it
		// through mtmd, unpruned. Anything else gets the encoder's errors.
		if pi.Vision && !pi.Encoder() {
			if weights != bridge.WeightsAsStored {
				m.Close()
				return nil, &OptionError{"encoder-type", cfg.EncoderWeights,
					fmt.Sprintf("projector type %q runs through llama.cpp's mtmd, which takes the file's weights", pi.Type)}
			}
			if cfg.EncoderFlashAttn != FlashAttnAuto {
				m.Close()
				return nil, &OptionError{"encoder-flash-attn", cfg.EncoderFlashAttn,
					fmt.Sprintf("projector type %q runs through llama.cpp's mtmd, whose clip always takes auto", pi.Type)}
			}
			if err := p.openMtmd(); err != nil {
				m.Close()
				return nil, err
			}
			return p, nil
		}
		t1 := time.Now()
		enc, err := bridge.OpenEncoder(cfg.MMProj, bridge.EncoderParams{
			ObjectLayer: cfg.ObjectLayer, Layout: cfg.Layout, UseGPU: cfg.EncoderGPU, Threads: cfg.Threads,
			Weights: weights, FlashAttn: cfg.EncoderFlashAttn, NoRepack: cfg.NoRepack,
		})
		if err != nil {
			m.Close()
			return nil, err
		}
		in := enc.Info()
		if lmWidth := m.NEmbd(); in.ProjDim != lmWidth {
			enc.Close()
			m.Close()
			return nil, fmt.Errorf("mmproj %s projects to width %d but the language model %s takes %d: %w",
				cfg.MMProj, in.ProjDim, cfg.Model, lmWidth, ErrMismatch)
		}
		p.enc = enc
		// On a GPU the split's second graph and the round trip of every
		// token's hidden state through host memory cost more than the
		// projector rows it saves (H200, 1B-class: --prune none encoded in
		// 13 ms split against clip's 9 ms), so it is for the CPU.
		p.split = in.Split && in.OnCPU
		p.params = imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std, Pinpoints: in.Pinpoints}
		p.newline = enc.Newline()
		if err := p.setFamily(in); err != nil {
			enc.Close()
			p.enc = nil
			m.Close()
			return nil, err
		}
		log.Info("loaded vision encoder", "path", cfg.MMProj, "backend", in.Backend, "tokens", in.NPatches,
			"blocks", in.NRun, "object_layer", in.ObjectLayer, "flash_attn", in.FlashAttn, "pinpoints", len(in.Pinpoints),
			"merge", in.MergeType, "weights", in.WeightType, "weight_buffer", in.WeightBuffer, "ms", time.Since(t1).Milliseconds())
	}
	return p, nil
}

// Close closes the pipeline's open sessions (waiting for calls in
// progress), then frees the models. Every method of the pipeline and its
// sessions returns ErrClosed afterwards. Safe to call twice.
func (p *Pipeline) Close() error {
	p.closing.Store(true)
	p.closeSessions()
	p.life.Lock() // waits for encodes and NewSession calls in progress
	defer p.life.Unlock()
	p.closeSessions() // any that a NewSession in progress made
	if p.enc != nil {
		p.enc.Close()
		p.enc = nil
	}
	if p.mtmd != nil {
		p.mtmd.Close()
		p.mtmd = nil
	}
	if p.model != nil {
		p.model.Close()
		p.model = nil
	}
	return nil
}

func (p *Pipeline) closeSessions() {
	p.mu.Lock()
	open := make([]*Session, 0, len(p.sessions))
	for s := range p.sessions {
		open = append(open, s)
	}
	p.mu.Unlock()
	for _, s := range open {
		s.Close()
	}
}

// enter admits a call that uses the models; leave ends it.
func (p *Pipeline) enter() error {
	p.life.RLock()
	if p.closing.Load() {
		p.life.RUnlock()
		return fmt.Errorf("pipeline: %w", ErrClosed)
	}
	return nil
}

func (p *Pipeline) leave() { p.life.RUnlock() }

func (p *Pipeline) track(s *Session) {
	p.mu.Lock()
	p.sessions[s] = struct{}{}
	p.mu.Unlock()
}

func (p *Pipeline) untrack(s *Session) {
	p.mu.Lock()
	delete(p.sessions, s)
	p.mu.Unlock()
}

// Model is the language model, for tests and benchmarks (nil once closed).
func (p *Pipeline) Model() *bridge.Model { return p.model }

// Encoder is the vision encoder, for tests and benchmarks; nil for a
// text-only pipeline, one whose projector runs through mtmd, or once closed.
func (p *Pipeline) Encoder() *bridge.Encoder { return p.enc }

// ImageParams are the preprocessing parameters read from the projector.
func (p *Pipeline) ImageParams() imageprep.Params { return p.params }

// Image is a decoded input image. Build one with DecodeImage or
// LoadImage (which remember a hash of the bytes decoded) or by hand; the
// pixels must not change once the image has been given to a session.
type Image struct {
	Name string
	RGB  *imageprep.RGB

	digest [32]byte // SHA-256 of the bytes decoded, when hashed
	hashed bool
}

// Pruned is one image after encoding and selection. Release hands its
// buffers back for the next image; Embd must not be used after it.
type Pruned struct {
	enc  *bridge.Encoding
	pool *sync.Pool
	key  string // the image's identity and the options (Session.Sync)

	Name string // the image's name
	// Kept are the kept positions of the image's token sequence, ascending:
	// grid indices for LLaVA-1.5 and Qwen2.5-VL (its merged-token grid);
	// for LLaVA-NeXT, positions in the layout of anyres.go (views, newlines).
	Kept         []int
	Embd         []float32 // the kept rows, in order, each NEmbd wide
	NTokens      int       // tokens before pruning
	GridW, GridH int       // one view's token grid (Qwen2.5-VL: merged tokens, following the image)
	Views        int       // views the image was cut into (1 for LLaVA-1.5)
	// Mask holds each view's kept patches, for imageprep.WriteMasksPNG.
	Mask       []imageprep.MaskView
	Preprocess time.Duration
	Encode     time.Duration
	Select     time.Duration // the selection itself (the scores come out of the encoder graph)
}

// PrepareImage preprocesses, encodes and prunes one image.
func (p *Pipeline) PrepareImage(ctx context.Context, img *Image, o Options) (*Pruned, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	enc, err := p.Encode(ctx, img, o.ObjectLayer)
	if err != nil {
		return nil, err
	}
	pr, err := p.prune(ctx, enc, o, true)
	if err != nil {
		enc.Release()
		return nil, err
	}
	return pr, nil
}

// Encoded is one image after the encoder, before selection: every token's
// embedding and the two attention score vectors. One encoding serves any
// number of selections (Prune), so callers that try several budgets or
// methods on an image pay the encoder once. Release hands its buffers back.
type Encoded struct {
	enc  *bridge.Encoding
	next *nextImage // instead of enc for an any-resolution (LLaVA-NeXT) image
	pool *sync.Pool
	src  imageprep.Size
	id   string // the image's identity (Image.id)

	Name         string
	ObjectLayer  int // the block whose attention gave the object scores (1-based, resolved)
	NTokens      int // the image's LM tokens before pruning
	GridW, GridH int // one view's token grid (Qwen2.5-VL: merged tokens, following the image)
	Views        int // views the image was cut into (1 for LLaVA-1.5)
	Preprocess   time.Duration
	Encode       time.Duration
}

// Release returns the buffers to the pipeline. Optional; safe to call twice.
func (e *Encoded) Release() {
	if e.enc != nil && e.pool != nil {
		e.pool.Put(e.enc)
	}
	if e.next != nil {
		e.next.release(e.pool)
	}
	e.enc, e.next = nil, nil
}

// Encode preprocesses and encodes one image, probing objectLayer (1-based;
// 0 = the pipeline's default) for HiPrune's object scores.
func (p *Pipeline) Encode(ctx context.Context, img *Image, objectLayer int) (*Encoded, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.mtmd != nil {
		return nil, fmt.Errorf("%w: %w: image %s: projector type %s runs through llama.cpp's mtmd, which gives no attention scores",
			ErrOptions, ErrNoPruning, img.Name, p.Projector())
	}
	if p.enc == nil {
		return nil, fmt.Errorf("image %s: %w (give --mmproj)", img.Name, ErrNoVision)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.encodes.Add(1)
	if p.anyRes() {
		e, err := p.encodeViews(ctx, img, objectLayer)
		if err == nil {
			e.id = img.id()
		}
		return e, err
	}
	t0 := time.Now()
	var f *imageprep.Float
	var err error
	switch {
	case p.dynamic:
		f, err = imageprep.PreprocessDynamic(img.RGB, p.dyn)
	case p.proj.Type == projGemma3:
		f, err = imageprep.PreprocessGemma3(img.RGB, p.params)
	default:
		f, err = imageprep.Preprocess(img.RGB, p.params)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	pre := time.Since(t0)
	var t1 time.Time // set once the compute slot is ours
	dst, _ := p.bufs.Get().(*bridge.Encoding)
	var enc *bridge.Encoding
	err = p.compute(ctx, func() (err error) {
		t1 = time.Now()
		// The encoder resolves layer 0 to its default (Config.ObjectLayer)
		// and range-checks the layer: the rule lives there only.
		enc, err = p.enc.Encode(dst, f, bridge.EncodeOptions{ObjectLayer: objectLayer, Threads: p.cfg.Threads, Deferred: p.split})
		return err
	})
	if errors.Is(err, bridge.ErrArg) {
		// The image is preprocessed to a size the encoder takes above, so
		// a bad argument here is the caller's object layer.
		return nil, fmt.Errorf("%w: image %s: %w", ErrOptions, img.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return &Encoded{
		enc: enc, pool: &p.bufs, Name: img.Name, ObjectLayer: enc.ObjectLayer, NTokens: len(enc.Object),
		GridW: enc.GridW, GridH: enc.GridH, Views: 1, Preprocess: pre, Encode: time.Since(t1),
		src: imageprep.Size{W: img.RGB.W, H: img.RGB.H}, id: img.id(),
	}, nil
}

// Prune selects the tokens o keeps from an encoded image. The result owns
// a copy of the kept rows, so the encoding can be pruned again (another
// budget or method) or released. o.ObjectLayer must be 0 or the layer the
// image was encoded with (Encoded.ObjectLayer). For a LLaVA-1.5 image the
// encoder's last step (the deep block's MLP and the projector) runs here,
// for the kept tokens only, in the pipeline's compute slot: ctx cancels the
// wait for it.
func (p *Pipeline) Prune(ctx context.Context, e *Encoded, o Options) (*Pruned, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if e.enc == nil && e.next == nil {
		return nil, fmt.Errorf("%w: image %s: encoding already released", ErrOptions, e.Name)
	}
	if o.ObjectLayer != 0 && o.ObjectLayer != e.ObjectLayer {
		return nil, fmt.Errorf("%w: image %s was encoded probing object layer %d, options ask for %d",
			ErrOptions, e.Name, e.ObjectLayer, o.ObjectLayer)
	}
	return p.prune(ctx, e, o, false)
}

// prune selects from e; inPlace compacts the kept rows inside e's buffers
// and hands them to the result (PrepareImage's single-use path).
func (p *Pipeline) prune(ctx context.Context, e *Encoded, o Options, inPlace bool) (*Pruned, error) {
	pr, err := p.selectRows(ctx, e, o, inPlace)
	if err == nil && e.id != "" {
		pr.key = e.id + o.key()
	}
	return pr, err
}

func (p *Pipeline) selectRows(ctx context.Context, e *Encoded, o Options, inPlace bool) (*Pruned, error) {
	if e.next != nil {
		pr, err := p.pruneViews(e, o)
		if err == nil && inPlace {
			e.Release() // pr owns a copy of its rows
		}
		return pr, err
	}
	enc := e.enc
	n := len(enc.Object)
	budget := o.Budget(n)
	if p.dynamic {
		budget = o.budgetQwen(n)
	}
	var kept []int
	var err error
	t3 := time.Now()
	switch o.method() {
	case MethodNone:
		kept = allIndices(n)
	case MethodHiPrune:
		kept, err = hiprune.Select(enc.Object, enc.Deep, enc.GridW, enc.GridH, hiprune.Config{Budget: budget, Alpha: o.alpha()})
	case MethodUniform:
		kept, err = hiprune.Uniform(n, budget)
	case MethodRandom:
		kept, err = hiprune.Random(n, budget, o.Seed)
	}
	t4 := time.Now()
	if err != nil {
		return nil, fmt.Errorf("image %s: select: %w", e.Name, err)
	}
	w := enc.ProjDim
	pr := &Pruned{
		Name: e.Name, Kept: kept, NTokens: n, GridW: enc.GridW, GridH: enc.GridH, Views: 1, Mask: p.maskViews(e, kept),
		Preprocess: e.Preprocess, Encode: e.Encode, Select: t4.Sub(t3),
	}
	if enc.Deferred {
		// The encoder's last step, for the kept rows only. In place, the
		// rows go into the encoding's own (pooled) embedding buffer.
		var dst []float32
		if inPlace {
			dst = enc.Embd[:0]
		}
		err := p.compute(ctx, func() (err error) {
			t := time.Now()
			dst, err = p.enc.Project(dst, enc, kept, p.cfg.Threads)
			pr.Encode += time.Since(t)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", e.Name, err)
		}
		pr.Embd = dst
		if inPlace {
			enc.Embd = dst
			pr.enc, pr.pool = enc, e.pool
			e.enc = nil // handed over to pr
		}
		return pr, nil
	}
	if !inPlace {
		pr.Embd = make([]float32, len(kept)*w)
		for j, i := range kept {
			copy(pr.Embd[j*w:(j+1)*w], enc.Row(i))
		}
		return pr, nil
	}
	// Compact the kept rows in place: kept is ascending, so row j is only
	// ever overwritten by a row at or after it.
	for j, i := range kept {
		if i != j {
			copy(enc.Embd[j*w:(j+1)*w], enc.Row(i))
		}
	}
	pr.Embd = enc.Embd[: len(kept)*w : len(kept)*w]
	pr.enc, pr.pool = enc, e.pool
	e.enc = nil // handed over to pr
	return pr, nil
}

// maskViews maps an image's kept tokens back onto the original image: the
// square view of LLaVA-1.5, or Qwen2.5-VL's resized image (28 px tokens).
func (p *Pipeline) maskViews(e *Encoded, kept []int) []imageprep.MaskView {
	if p.dynamic {
		mv, err := imageprep.DynamicMaskView(e.src.W, e.src.H, p.dyn, kept)
		if err != nil || mv.GridW != e.GridW || mv.GridH != e.GridH {
			return nil // not this pipeline's image: no mask rather than a wrong one
		}
		return []imageprep.MaskView{mv}
	}
	return []imageprep.MaskView{{Layout: imageprep.Geometry(e.src.W, e.src.H, p.params), GridW: e.GridW, GridH: e.GridH,
		Patch: p.params.ImageSize / max(e.GridW, 1), Kept: kept}}
}

// Release returns the buffers to the pipeline. Optional; safe to call twice.
func (pr *Pruned) Release() {
	if pr.enc != nil && pr.pool != nil {
		pr.pool.Put(pr.enc)
	}
	pr.enc, pr.Embd = nil, nil
}

// compute runs f once the pipeline's compute slot is free (see
// Config.Parallel), or returns ctx's error while waiting.
func (p *Pipeline) compute(ctx context.Context, f func() error) error {
	// Acquire may succeed on a done context when a slot is free.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer p.sem.Release(1)
	return f()
}

func allIndices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
