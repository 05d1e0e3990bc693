package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// bench holds everything the runs share: one language model, our pipeline
// (LM + instrumented encoder), llama.cpp's mtmd over the same LM, and one
// llama.cpp context that every configuration uses in turn, cleared before
// each run, so n_ctx, n_batch, threads and flash attention are identical.
type bench struct {
	o      *options
	log    *slog.Logger
	mmPath string
	pipe   *llava.Pipeline
	sess   *llava.Session
	// pipeQ8 and sessQ8: the same pipeline with --encoder-type q8_0 (nil
	// unless o.q8 and a LLaVA encoder).
	pipeQ8 *llava.Pipeline
	sessQ8 *llava.Session
	// pipePlain and sessPlain: the same pipeline with every weight in
	// ggml's plain CPU buffer (--no-repack), for row none-norepack (nil
	// with -no-repack, without -repack-row, or where the CPU backend has
	// no extra buffer types).
	pipePlain *llava.Pipeline
	sessPlain *llava.Session
	mtmd      *bridge.Mtmd
	img       *llava.Image
	// warmImg warms the encoders and the LM up untimed: the sample image,
	// or for Qwen2.5-VL a small one (a 1,369-token encode of the 3B tower
	// takes minutes on 2 cores, and the warm-up only needs to touch the
	// code paths and the weights).
	warmImg *llava.Image
	// The same prompt in both spellings of the image marker.
	ourText, mtmdPrompt string
	textTokens          int
}

func newBench(ctx context.Context, o *options, lmPath, mmPath string, rgb *imageprep.RGB, log *slog.Logger) (*bench, error) {
	b := &bench{o: o, log: log, mmPath: mmPath}
	t0 := time.Now()
	pipe, err := llava.Open(ctx, llava.Config{Model: lmPath, MMProj: mmPath, Threads: o.threads,
		GPULayers: o.ngl, EncoderGPU: o.encoderGPU, NoRepack: o.noRepack})
	if err != nil {
		return nil, fmt.Errorf("opening the pipeline: %w", err)
	}
	b.pipe = pipe
	sess, err := pipe.NewSession(llava.SessionConfig{NCtx: o.nCtx, NBatch: o.nBatch, FlashAttn: bridge.FlashAttnAuto, Template: "llava"})
	if err != nil {
		b.close()
		return nil, fmt.Errorf("creating the LM context: %w", err)
	}
	b.sess = sess
	in := pipe.Encoder().Info()
	log.Info("pipeline ready", "lm", pipe.Model().Desc(), "image_tokens", in.NPatches, "dynamic", in.Dynamic, "encoder_blocks", in.NRun,
		"object_layer", in.ObjectLayer, "encoder_backend", in.Backend, "encoder_flash_attn", in.FlashAttn, "n_ctx", sess.Context().NCtx(),
		"n_batch", sess.Context().NBatch(), "threads", o.threads, "s", secs(time.Since(t0)))

	// Further pipelines over the same files, each with its own copy of the
	// LM and a context like sess's.
	extra := func(what string, cfg llava.Config) (*llava.Pipeline, *llava.Session, error) {
		t1 := time.Now()
		cfg.Model, cfg.MMProj, cfg.Threads, cfg.GPULayers, cfg.EncoderGPU = lmPath, mmPath, o.threads, o.ngl, o.encoderGPU
		p, err := llava.Open(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("opening the %s pipeline: %w", what, err)
		}
		s, err := p.NewSession(llava.SessionConfig{NCtx: o.nCtx, NBatch: o.nBatch, FlashAttn: bridge.FlashAttnAuto, Template: "llava"})
		if err != nil {
			p.Close()
			return nil, nil, fmt.Errorf("creating the %s pipeline's LM context: %w", what, err)
		}
		log.Info(what+" pipeline ready", "weights", p.Encoder().Info().WeightType, "s", secs(time.Since(t1)))
		return p, s, nil
	}
	if o.q8 && in.Projector == "mlp" {
		if b.pipeQ8, b.sessQ8, err = extra("q8_0", llava.Config{EncoderWeights: "q8_0", NoRepack: o.noRepack}); err != nil {
			b.close()
			return nil, err
		}
	}
	if o.repackRow && !o.noRepack && len(bridge.CPUExtraBuffers()) > 0 {
		if b.pipePlain, b.sessPlain, err = extra("plain-weights", llava.Config{NoRepack: true}); err != nil {
			b.close()
			return nil, err
		}
	}

	b.img = &llava.Image{Name: fmt.Sprintf("sample-%dx%d", rgb.W, rgb.H), RGB: rgb}
	b.warmImg = b.img
	if o.qwen {
		small, err := imageprep.FromImage(testmodel.SampleImage(224, 224, o.seed))
		if err != nil {
			b.close()
			return nil, fmt.Errorf("warm-up image: %w", err)
		}
		b.warmImg = &llava.Image{Name: "warm-up-224x224", RGB: small}
	}
	// Session.Ask with the "llava" template renders "USER: " + text +
	// " ASSISTANT:"; mtmd gets the identical string with its own marker.
	b.ourText = llava.ImageMarker + "\n" + o.question
	b.mtmdPrompt = "USER: " + bridge.MtmdMarker() + "\n" + o.question + " ASSISTANT:"
	return b, nil
}

func (b *bench) close() {
	if b.mtmd != nil {
		b.mtmd.Close()
	}
	if b.sess != nil {
		b.sess.Close()
	}
	if b.pipe != nil {
		b.pipe.Close()
	}
	if b.sessQ8 != nil {
		b.sessQ8.Close()
	}
	if b.pipeQ8 != nil {
		b.pipeQ8.Close()
	}
	if b.sessPlain != nil {
		b.sessPlain.Close()
	}
	if b.pipePlain != nil {
		b.pipePlain.Close()
	}
}

// encoderResult is the encoder comparison: medians of alternated runs.
type encoderResult struct {
	OursMS, LlamaCppMS []float64
	// SplitMS: our encoder as HiPrune N' = splitKeep runs it in the
	// pipeline: up to the deep block's attention for every token, select,
	// then the rest for the kept tokens only (empty for encoders that do
	// not split).
	SplitMS []float64
	// Q8MS: our encoder with q8_0 matrix weights, whole (empty without -q8).
	Q8MS []float64
	// Q4MS: with q4_0 matrix weights, whole, where the pipeline would put
	// them (Q4Buffer: ggml's repacked layout on most CPUs); Q4PlainMS the
	// same in ggml's plain buffer, when that is another place (both empty
	// without -q8).
	Q4MS, Q4PlainMS []float64
	Q4Buffer        string
	// OtherFlashMS: our encoder whole with the other flash-attention
	// setting than the pipeline's; OtherFlashOn says which.
	OtherFlashMS []float64
	OtherFlashOn bool
	OthersCPU    []float64 // per timed encode
}

// splitKeep is the budget of the split-encoder timing.
const splitKeep = 64

// noisyShare is the share of the machine's CPU taken by other processes
// above which a run is flagged as noisy.
const noisyShare = 0.05

func pct(x float64) string {
	if x < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// encoderComparison times our encoder (as the pipeline opened it: HiPrune
// probes at the object and deep layers, CLIP's token order) against
// llama.cpp's clip on the same preprocessed image and threads, alternating
// them (and which goes first) run by run. llama.cpp's clip is freed after,
// before mtmd loads its own copy of the weights.
func (b *bench) encoderComparison(ctx context.Context) (encoderResult, error) {
	var res encoderResult
	clip, err := bridge.OpenClip(b.mmPath, b.o.encoderGPU, -1)
	if err != nil {
		return res, fmt.Errorf("opening llama.cpp's clip: %w", err)
	}
	defer clip.Close()
	views, err := clip.Preprocess(b.img.RGB)
	if err != nil {
		return res, fmt.Errorf("clip preprocess: %w", err)
	}
	img := views[0]
	enc := b.pipe.Encoder()
	th := b.o.threads
	var dst *bridge.Encoding
	ours := func() (err error) { dst, err = enc.Encode(dst, img, bridge.EncodeOptions{Threads: th}); return err }
	theirs := func() error { _, err := clip.Encode(img, th); return err }
	impls := map[string]func() error{"ours": ours, "llamacpp": theirs}
	names := []string{"ours", "llamacpp"}
	// open opens another of our encoders on the same file and threads
	// (every weight plain with -no-repack); whole times one as a whole
	// encode of img, reusing its output.
	open := func(p bridge.EncoderParams) (*bridge.Encoder, error) {
		p.Threads, p.UseGPU, p.NoRepack = th, b.o.encoderGPU, p.NoRepack || b.o.noRepack
		return bridge.OpenEncoder(b.mmPath, p)
	}
	whole := func(e *bridge.Encoder) func() error {
		var d *bridge.Encoding
		return func() (err error) { d, err = e.Encode(d, img, bridge.EncodeOptions{Threads: th}); return err }
	}
	if in := enc.Info(); in.Split {
		// A second encoder like the pipeline's: one encoder switching
		// between its whole graph and the split one would rebuild and
		// reallocate the graph at every switch, which the pipeline (always
		// split) never does.
		split, err := open(bridge.EncoderParams{})
		if err != nil {
			return res, fmt.Errorf("opening the split encoder: %w", err)
		}
		defer split.Close()
		var def *bridge.Encoding
		var rows []float32
		impls["ours-split"] = func() (err error) {
			if def, err = split.Encode(def, img, bridge.EncodeOptions{Threads: th, Deferred: true}); err != nil {
				return err
			}
			kept, err := hiprune.Select(def.Object, def.Deep, def.GridW, def.GridH, hiprune.Config{Budget: splitKeep, Alpha: hiprune.DefaultAlpha})
			if err != nil {
				return err
			}
			rows, err = split.Project(rows, def, kept, th)
			return err
		}
		names = append(names, "ours-split")
	}
	if b.pipeQ8 != nil {
		impls["ours-q8_0"] = whole(b.pipeQ8.Encoder())
		names = append(names, "ours-q8_0")
		// q4_0 where the pipeline puts it, and in the plain buffer, which
		// is where llama.cpp's clip keeps any weights (timed too when that
		// is another place).
		q4, err := open(bridge.EncoderParams{Weights: bridge.WeightsQ4_0})
		if err != nil {
			return res, fmt.Errorf("opening the q4_0 encoder: %w", err)
		}
		defer q4.Close()
		q4plain, err := open(bridge.EncoderParams{Weights: bridge.WeightsQ4_0, NoRepack: true})
		if err != nil {
			return res, fmt.Errorf("opening the q4_0 encoder: %w", err)
		}
		defer q4plain.Close()
		res.Q4Buffer = q4.Info().WeightBuffer
		impls["ours-q4_0"] = whole(q4)
		names = append(names, "ours-q4_0")
		if q4plain.Info().WeightBuffer != res.Q4Buffer {
			impls["ours-q4_0-plain"] = whole(q4plain)
			names = append(names, "ours-q4_0-plain")
		}
	}
	// Our encoder whole with the other flash-attention setting than the
	// pipeline's (auto: off for CLIP on the CPU, on on a GPU), to show
	// what the choice is worth at the image's token count.
	other := bridge.FlashOn
	if enc.Info().FlashAttn {
		other = bridge.FlashOff
	}
	of, err := open(bridge.EncoderParams{FlashAttn: other})
	if err != nil {
		return res, fmt.Errorf("opening the encoder with flash attention %v: %w", other, err)
	}
	defer of.Close()
	res.OtherFlashOn = of.Info().FlashAttn
	impls["ours-otherflash"] = whole(of)
	names = append(names, "ours-otherflash")
	b.log.Info("encoder comparison: warming up")
	var warm []func() error
	for _, n := range names {
		warm = append(warm, impls[n])
	}
	if b.warmImg != b.img {
		wv, err := clip.Preprocess(b.warmImg.RGB)
		if err != nil {
			return res, fmt.Errorf("clip preprocess: %w", err)
		}
		warm = []func() error{
			func() (err error) { dst, err = enc.Encode(dst, wv[0], bridge.EncodeOptions{Threads: th}); return err },
			func() error { _, err := clip.Encode(wv[0], th); return err },
		}
	}
	for _, f := range warm {
		if err := f(); err != nil {
			return res, fmt.Errorf("encoder warm-up: %w", err)
		}
	}
	for r := 0; r < b.o.encRuns; r++ {
		// Each run starts with another implementation, so that none is
		// always first or always last.
		order := append(slices.Clone(names[r%len(names):]), names[:r%len(names)]...)
		for _, which := range order {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			runtime.GC()
			c0 := readCPU()
			f := impls[which]
			t := time.Now()
			if err := f(); err != nil {
				return res, fmt.Errorf("encoder %s: %w", which, err)
			}
			d := ms(time.Since(t))
			res.OthersCPU = append(res.OthersCPU, othersShare(c0, readCPU()))
			switch which {
			case "ours":
				res.OursMS = append(res.OursMS, d)
			case "ours-split":
				res.SplitMS = append(res.SplitMS, d)
			case "ours-q8_0":
				res.Q8MS = append(res.Q8MS, d)
			case "ours-q4_0":
				res.Q4MS = append(res.Q4MS, d)
			case "ours-q4_0-plain":
				res.Q4PlainMS = append(res.Q4PlainMS, d)
			case "ours-otherflash":
				res.OtherFlashMS = append(res.OtherFlashMS, d)
			default:
				res.LlamaCppMS = append(res.LlamaCppMS, d)
			}
			b.log.Info("encoder", "run", r+1, "impl", which, "ms", fmt.Sprintf("%.0f", d), "others_cpu", pct(res.OthersCPU[len(res.OthersCPU)-1]))
		}
	}
	return res, nil
}

// sample is one run of one configuration.
type sample struct {
	ImageTokens  int
	TextTokens   int
	Preprocess   time.Duration
	Encode       time.Duration
	Select       time.Duration
	Prefill      time.Duration
	TTFT         time.Duration
	DecodeTokens int
	DecodeTPS    float64
	KVImageBytes int64
	Answer       string
	OthersCPU    float64 // share of the machine's CPU other processes took during the run; -1 unknown
}

// nextTokens is what pruning papers count for a LLaVA-NeXT image: 5 views
// of 576 (a base view and 2 x 2 tiles, merged without the unpad crop).
const nextTokens = 2880

type config struct {
	name string
	mtmd bool
	sess *llava.Session // another pipeline's (q8_0, plain weights); nil: the main one
	opts llava.Options
}

func (b *bench) configs() []config {
	cs := []config{{name: "mtmd", mtmd: true}, {name: "none", opts: llava.Options{Method: llava.MethodNone}}}
	if b.sessPlain != nil {
		cs = append(cs, config{name: plainName, sess: b.sessPlain, opts: llava.Options{Method: llava.MethodNone}})
	}
	for _, k := range b.o.keeps {
		o := llava.Options{Method: llava.MethodHiPrune, Keep: k}
		if b.o.next {
			// N' of the 2,880 tokens pruning papers count, as a fraction of
			// the tokens this layout gives the image.
			o = llava.Options{Method: llava.MethodHiPrune, KeepRatio: float64(k) / nextTokens}
		}
		cs = append(cs, config{name: fmt.Sprintf("hiprune-%d", k), opts: o})
	}
	for _, r := range b.o.ratios {
		cs = append(cs, config{name: ratioName(r), opts: llava.Options{Method: llava.MethodHiPrune, KeepRatio: r}})
	}
	if b.pipeQ8 != nil && slices.Contains(b.o.keeps, q8Keep) {
		cs = append(cs, config{name: q8Name, sess: b.sessQ8, opts: llava.Options{Method: llava.MethodHiPrune, Keep: q8Keep}})
	}
	return cs
}

// q8Keep and q8Name: the row of the q8_0 encoder (issue 15's hiprune-64-q8).
const q8Keep = 64

var q8Name = fmt.Sprintf("hiprune-%d-q8", q8Keep)

// plainName is the row of the unpruned pipeline with its LM's weights in
// ggml's plain buffer, as ollama's cgo build of llama.cpp keeps them.
const plainName = "none-norepack"

func ratioName(r float64) string { return fmt.Sprintf("hiprune-r%g", r) }

// pruned names the pruned rows and their budgets N' (0: a ratio, the row's
// kept tokens are its N').
func (b *bench) pruned() []prunedRow {
	var out []prunedRow
	for _, k := range b.o.keeps {
		out = append(out, prunedRow{name: fmt.Sprintf("hiprune-%d", k), keep: k})
	}
	for _, r := range b.o.ratios {
		out = append(out, prunedRow{name: ratioName(r)})
	}
	if b.pipeQ8 != nil && slices.Contains(b.o.keeps, q8Keep) {
		out = append(out, prunedRow{name: q8Name, keep: q8Keep})
	}
	return out
}

// imageNote says what a Qwen2.5-VL image becomes: the smart-resized size,
// its merged-token grid and the M-RoPE positions it takes ("" otherwise).
func (b *bench) imageNote() string {
	dp, ok := b.pipe.DynamicParams()
	if !ok {
		return ""
	}
	sz, err := imageprep.SmartResize(b.img.RGB.W, b.img.RGB.H, dp)
	if err != nil {
		return ""
	}
	a := dp.Align()
	nx, ny := sz.W/a, sz.H/a
	return fmt.Sprintf("%dx%d image, smart-resized to %dx%d: %d x %d = %d merged tokens in %d M-RoPE positions",
		b.img.RGB.W, b.img.RGB.H, sz.W, sz.H, nx, ny, nx*ny, max(nx, ny))
}

func (b *bench) gen() llava.GenOptions {
	return llava.GenOptions{MaxTokens: b.o.nPredict, Temp: 0, RepeatPenalty: 1}
}

// endToEnd runs every configuration o.runs times, alternating them.
func (b *bench) endToEnd(ctx context.Context) ([]rowSamples, error) {
	t0 := time.Now()
	mt, err := bridge.OpenMtmd(b.mmPath, b.pipe.Model(), bridge.MtmdParams{Threads: b.o.threads, UseGPU: b.o.encoderGPU})
	if err != nil {
		return nil, fmt.Errorf("opening mtmd: %w", err)
	}
	b.mtmd = mt
	b.log.Info("mtmd ready (with its warm-up encode)", "s", secs(time.Since(t0)))

	cs := b.configs()
	// Warm-up, not recorded: the first LM evaluation pages the weights in;
	// a short pruned run touches the LM, the sampler and our encoder (mtmd
	// ran its own encoder warm-up when it loaded).
	b.log.Info("end to end: warming up")
	t1 := time.Now()
	warm := llava.Options{Method: llava.MethodHiPrune, Keep: 16}
	if b.o.next {
		// A LLaVA-NeXT image keeps a newline per row: 16 is too few.
		warm = llava.Options{Method: llava.MethodHiPrune, KeepRatio: 160.0 / nextTokens}
	}
	w, err := b.runOurs(ctx, b.warmImg, warm)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for _, s := range []*llava.Session{b.sessQ8, b.sessPlain} {
		if s == nil {
			continue
		}
		if _, err := b.runSession(ctx, s, b.warmImg, warm); err != nil {
			return nil, fmt.Errorf("warm-up of a second pipeline: %w", err)
		}
	}
	b.log.Info("warm-up", "image_tokens", w.ImageTokens, "encode_ms", fmt.Sprintf("%.0f", ms(w.Encode)),
		"prefill_ms", fmt.Sprintf("%.0f", ms(w.Prefill)), "ttft_ms", fmt.Sprintf("%.0f", ms(w.TTFT)), "wall_s", secs(time.Since(t1)))
	b.textTokens = w.TextTokens
	if err := b.checkPrompt(); err != nil {
		return nil, err
	}
	b.log.Info("prompt", "text_tokens", b.textTokens, "n_predict", b.o.nPredict)

	rows := make([]rowSamples, len(cs))
	for i, c := range cs {
		rows[i].name = c.name
	}
	for r := 0; r < b.o.runs; r++ {
		for j := range cs {
			i := (r + j) % len(cs) // rotate which configuration goes first
			c := cs[i]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			runtime.GC()
			t, c0 := time.Now(), readCPU()
			var s sample
			var err error
			switch {
			case c.mtmd:
				s, err = b.runMtmd(ctx)
			case c.sess != nil:
				s, err = b.runSession(ctx, c.sess, b.img, c.opts)
			default:
				s, err = b.runOurs(ctx, b.img, c.opts)
			}
			if err != nil {
				return nil, fmt.Errorf("run %d, %s: %w", r+1, c.name, err)
			}
			s.OthersCPU = othersShare(c0, readCPU())
			if s.TextTokens != b.textTokens {
				b.log.Warn("text token count differs from mtmd's", "config", c.name, "text_tokens", s.TextTokens, "mtmd", b.textTokens)
			}
			rows[i].samples = append(rows[i].samples, s)
			b.log.Info("run", "run", r+1, "config", c.name, "image_tokens", s.ImageTokens,
				"encode_ms", fmt.Sprintf("%.0f", ms(s.Encode)), "select_ms", fmt.Sprintf("%.3f", ms(s.Select)),
				"prefill_ms", fmt.Sprintf("%.0f", ms(s.Prefill)), "ttft_ms", fmt.Sprintf("%.0f", ms(s.TTFT)), "decode_tps", fmt.Sprintf("%.2f", s.DecodeTPS),
				"wall_s", secs(time.Since(t)), "others_cpu", pct(s.OthersCPU))
			if s.OthersCPU > noisyShare {
				b.log.Warn("other processes used the CPU during this run; its timings are noisy", "others_cpu", pct(s.OthersCPU))
			}
			b.log.Debug("answer", "config", c.name, "text", s.Answer)
		}
	}
	return rows, nil
}

// checkPrompt makes sure mtmd sees the same text tokens as our pipeline.
func (b *bench) checkPrompt() error {
	ch, err := b.mtmd.Tokenize(b.mtmdPrompt, []*imageprep.RGB{b.img.RGB}, true)
	if err != nil {
		return fmt.Errorf("mtmd tokenize: %w", err)
	}
	defer ch.Free()
	n := 0
	for i := 0; i < ch.Len(); i++ {
		if !ch.IsImage(i) {
			n += ch.NTokens(i)
		}
	}
	if n != b.textTokens {
		return fmt.Errorf("mtmd tokenizes the prompt to %d text tokens, our pipeline to %d: the comparison would not be fair", n, b.textTokens)
	}
	return nil
}

// runOurs is one turn of our pipeline from an empty KV cache.
func (b *bench) runOurs(ctx context.Context, img *llava.Image, o llava.Options) (sample, error) {
	return b.runSession(ctx, b.sess, img, o)
}

// runSession is runOurs on a given session (the q8_0 pipeline's).
func (b *bench) runSession(ctx context.Context, sess *llava.Session, img *llava.Image, o llava.Options) (sample, error) {
	sess.Reset()
	ans, st, err := sess.Ask(ctx, llava.Turn{Text: b.ourText, Images: []*llava.Image{img}, Prune: o, Gen: b.gen()})
	if err != nil {
		return sample{}, err
	}
	s := sample{
		ImageTokens: st.ImageTokens, TextTokens: st.TextTokens, Prefill: st.Prefill, TTFT: st.TTFT,
		DecodeTokens: st.DecodeTokens, DecodeTPS: st.DecodeTPS(), KVImageBytes: st.KVImageBytes, Answer: ans,
	}
	for _, im := range st.Images {
		s.Preprocess += im.Preprocess
		s.Encode += im.Encode
		s.Select += im.Select
	}
	return s, nil
}

// runMtmd is one turn of llama.cpp's own path from an empty KV cache:
// mtmd_tokenize (which preprocesses the image), mtmd's chunk evaluation
// (clip encode, then the image embeddings and the text through
// llama_decode), then greedy sampling with the loop Session.Ask uses, so
// TTFT and decode speed mean the same on both sides.
func (b *bench) runMtmd(ctx context.Context) (sample, error) {
	b.sess.Reset()
	lctx := b.sess.Context()
	start := time.Now()
	chunks, err := b.mtmd.Tokenize(b.mtmdPrompt, []*imageprep.RGB{b.img.RGB}, true)
	if err != nil {
		return sample{}, err
	}
	defer chunks.Free()
	tok := time.Since(start)
	nPast, tm, err := b.mtmd.Eval(lctx, chunks, 0, true)
	if err != nil {
		return sample{}, err
	}
	s := sample{
		ImageTokens: tm.ImageTokens, TextTokens: tm.TextTokens, Preprocess: tok, Encode: tm.Encode, Prefill: tm.Prefill,
		KVImageBytes: int64(tm.ImageTokens) * lctx.KVBytesPerCell(),
	}
	m := b.pipe.Model()
	smp := bridge.NewSampler(bridge.SamplerParams{Temp: 0, RepeatPenalty: 1})
	defer smp.Close()
	var out strings.Builder
	var firstAt, lastAt time.Time
	samples := 0
	for i := 0; i < b.o.nPredict; i++ {
		if err := ctx.Err(); err != nil {
			return sample{}, err
		}
		t := smp.Sample(lctx)
		lastAt = time.Now()
		samples++
		if i == 0 {
			firstAt = lastAt
			s.TTFT = firstAt.Sub(start)
		}
		if m.IsEOG(t) {
			break
		}
		s.DecodeTokens++
		out.Write(m.TokenPiece(t))
		if nPast >= lctx.NCtx() {
			break
		}
		if err := lctx.DecodeTokens([]int32{t}, nPast, true); err != nil {
			return sample{}, err
		}
		nPast++
	}
	// As llava.Stats.DecodeTPS: samples after the first over the time from
	// the first sample to the last.
	if d := lastAt.Sub(firstAt); samples > 1 && d > 0 {
		s.DecodeTPS = float64(samples-1) / d.Seconds()
	}
	s.Answer = out.String()
	return s, nil
}
