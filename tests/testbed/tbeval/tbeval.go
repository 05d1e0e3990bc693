// Package tbeval measures answer accuracy under pruning on the testbed: the
// trained miniature LLaVA-1.5 shipped in tests/testbed/model, asked held-out
// questions about generated scenes (package testbed) through the llava
// pipeline, for every pruning method and budget, plus llama.cpp's own mtmd
// path as a reference.
//
// Each scene is encoded once per probed object layer and pruned once per
// configuration (llava.Pipeline.Encode and Prune); every question is then
// asked in a fresh conversation (the session's KV cache cleared), greedy,
// and scored on the first word of the answer (testbed.Score).
package tbeval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/testbed"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// The testbed model's shapes (the training script's defaults; export checks
// that the trained weights have them). ViT: 336 px at patch 21, a 16x16
// grid, 8 blocks 128 wide; the mmproj stores the blocks up to the layer the
// projector reads, like LLaVA-1.5's files, and no feature_layer key.
func ClipSpec() testmodel.ClipSpec {
	return testmodel.ClipSpec{ImageSize: testbed.ImageSize, PatchSize: 21, NEmbd: 128, NHead: 2, NFF: 512, NLayer: 8,
		ProjDim: 128, Type: testmodel.F16, Mean: testmodel.CLIPMean, Std: testmodel.CLIPStd,
		LayerNormEps: testmodel.DefaultLNEps}
}

// LMSpec is the testbed's language model: a 3-layer Llama 128 wide with the
// test models' built-in vocabulary, no chat template (the LLaVA-1.5 format).
func LMSpec() testmodel.LMSpec {
	return testmodel.LMSpec{NEmbd: 128, NLayer: 3, NHead: 2, NHeadKV: 2, NFF: 384, NCtx: 1024, Type: testmodel.F16}
}

// The LLaVA-1.5 prompt "USER: <image>\n{question} ASSISTANT:" split at the
// image, as llava.Session evaluates it (and the training script saw it).
const PromptBefore = "USER: "

// PromptAfter is the text after the image.
func PromptAfter(question string) string { return "\n" + question + " ASSISTANT:" }

// Fractions of the grid the budgets keep: LLaVA-1.5's 192/128/64/32/16 of 576.
var Fractions = []Fraction{{1, 3, 192}, {2, 9, 128}, {1, 9, 64}, {1, 18, 32}, {1, 36, 16}}

// Fraction is a budget as a fraction of the grid, and its LLaVA-1.5 count.
type Fraction struct{ Num, Den, Of576 int }

// Keep is the budget on an n-token grid.
func (f Fraction) Keep(n int) int { return max(1, int(math.Round(float64(n*f.Num)/float64(f.Den)))) }

// Alphas swept at 1/9 of the grid.
var Alphas = []float64{0, 0.05, 0.1, 0.2, 0.4}

// Config says what to evaluate.
type Config struct {
	LM, MMProj string
	Scenes     int    // held-out scenes (about 4.2 questions each)
	Seed       uint64 // held-out scene seed (the training used TrainSeed)
	Threads    int
	// ObjectLayer is HiPrune's object layer for the budget and alpha rows
	// (the sweep tries every block).
	ObjectLayer int
	// Quick evaluates only none, hiprune and uniform at 1/9 of the grid.
	Quick   bool
	MaskDir string // masks of MaskScenes scenes x {hiprune, uniform} at 1/9; "" for none
	Logger  *slog.Logger
}

// TrainSeed is the scene seed the shipped model was trained on.
const TrainSeed = 1

// HeldOutSeed is the default evaluation seed.
const HeldOutSeed = 2

// MaskScenes is how many scenes get mask images.
const MaskScenes = 8

// DefaultObjectLayer is block 3 of 8: CLIP-L's 9 of 24 at the same relative
// depth.
const DefaultObjectLayer = 3

// DefaultConfig evaluates the shipped pair on 400 held-out scenes.
func DefaultConfig() Config {
	dir := ModelDir()
	return Config{
		LM: filepath.Join(dir, "lm.gguf"), MMProj: filepath.Join(dir, "mmproj.gguf"),
		Scenes: 400, Seed: HeldOutSeed, Threads: runtime.NumCPU(), ObjectLayer: DefaultObjectLayer,
	}
}

// ModelDir is tests/testbed/model in this checkout.
func ModelDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("tests", "testbed", "model")
	}
	return filepath.Join(filepath.Dir(file), "..", "model")
}

// Row is one configuration's result.
type Row struct {
	Name        string         `json:"name"`
	Group       string         `json:"group"` // "reference", "budget", "layer", "alpha", "weights"
	Method      string         `json:"method"`
	Keep        int            `json:"keep"` // tokens kept per image
	Fraction    string         `json:"fraction,omitempty"`
	Alpha       float64        `json:"alpha,omitempty"`
	ObjectLayer int            `json:"object_layer,omitempty"`
	Weights     string         `json:"weights,omitempty"` // encoder matrix weights converted at load ("": as stored)
	Right       int            `json:"right"`
	Total       int            `json:"total"`
	Acc         float64        `json:"accuracy"`
	Lo          float64        `json:"ci95_lo"`
	Hi          float64        `json:"ci95_hi"`
	PerTemplate map[string]Acc `json:"per_template,omitempty"`
}

// Acc is a per-template count.
type Acc struct {
	Right int     `json:"right"`
	Total int     `json:"total"`
	Acc   float64 `json:"accuracy"`
}

// Report is the whole evaluation.
type Report struct {
	Model       string  `json:"model"`
	CPU         string  `json:"cpu"`
	Threads     int     `json:"threads"`
	Seed        uint64  `json:"seed"`
	Scenes      int     `json:"scenes"`
	Questions   int     `json:"questions"`
	GridW       int     `json:"grid_w"`
	GridH       int     `json:"grid_h"`
	ObjectLayer int     `json:"object_layer"`
	Blocks      int     `json:"blocks"`
	Seconds     float64 `json:"seconds"`
	Rows        []*Row  `json:"rows"`
	byName      map[string]*Row
	start       time.Time
}

// Row returns the named row, or nil.
func (r *Report) Row(name string) *Row { return r.byName[name] }

type config struct {
	row   *Row
	opts  llava.Options
	layer int // object layer the encoding must have probed
	mtmd  bool
	ours  string // "default" or "llamacpp"
	// weights: the encoder's matrix weights converted at load ("q8_0",
	// "q4_0"; "" as stored), on a pipeline of their own
	weights string
}

// WeightTypes are the quantized encoder weights the full evaluation rates
// (issue 15's --encoder-type), unpruned and at 1/9 of the grid.
var WeightTypes = []string{"q8_0", "q4_0"}

type item struct {
	scene int
	img   *llava.Image
	qas   []testbed.QA
}

// Run evaluates cfg and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Scenes <= 0 {
		return nil, errors.New("tbeval: Scenes must be > 0")
	}
	for _, p := range []string{cfg.LM, cfg.MMProj} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("tbeval: the testbed model is missing (make testbed trains it): %w", err)
		}
	}
	rep := &Report{Model: filepath.Dir(cfg.LM), CPU: cpuName(), Threads: cfg.Threads, Seed: cfg.Seed,
		Scenes: cfg.Scenes, byName: map[string]*Row{}, start: time.Now()}

	pipe, sess, err := open(ctx, cfg, bridge.LayoutCLSFirst, "")
	if err != nil {
		return nil, err
	}
	defer pipe.Close()
	defer sess.Close()
	info := pipe.Encoder().Info()
	rep.GridW, rep.GridH, rep.Blocks = info.GridW, info.GridH, info.NRun
	rep.ObjectLayer = cfg.ObjectLayer
	n := info.GridW * info.GridH

	configs := plan(rep, cfg, n, info.NRun)
	needRef := !cfg.Quick
	var pipeL *llava.Pipeline
	var sessL *llava.Session
	var mt *bridge.Mtmd
	var mctx *bridge.Context
	if needRef {
		if pipeL, sessL, err = open(ctx, cfg, bridge.LayoutLlamaCpp, ""); err != nil {
			return nil, err
		}
		defer pipeL.Close()
		defer sessL.Close()
		mt, err = bridge.OpenMtmd(cfg.MMProj, pipe.Model(), bridge.MtmdParams{Threads: cfg.Threads})
		if err != nil {
			return nil, fmt.Errorf("opening mtmd: %w", err)
		}
		defer mt.Close()
		mctx, err = bridge.NewContext(pipe.Model(), bridge.ContextParams{NCtx: 1024, Threads: cfg.Threads})
		if err != nil {
			return nil, err
		}
		defer mctx.Close()
	}
	type weighted struct {
		pipe *llava.Pipeline
		sess *llava.Session
	}
	byWeights := map[string]weighted{}
	for _, c := range configs {
		if c.weights == "" || byWeights[c.weights].pipe != nil {
			continue
		}
		p, s, err := open(ctx, cfg, bridge.LayoutCLSFirst, c.weights)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		defer s.Close()
		byWeights[c.weights] = weighted{p, s}
	}

	for sc := 0; sc < cfg.Scenes; sc++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it := makeItem(cfg.Seed, sc)
		rep.Questions += len(it.qas)
		// encodings by probed object layer, made on first use
		encs := map[int]*llava.Encoded{}
		encL := (*llava.Encoded)(nil)
		encW := map[string]*llava.Encoded{}
		for _, c := range configs {
			var answers []string
			switch {
			case c.mtmd:
				answers, err = askMtmd(mt, mctx, pipe.Model(), it)
			case c.weights != "":
				w := byWeights[c.weights]
				e := encW[c.weights]
				if e == nil {
					if e, err = w.pipe.Encode(ctx, it.img, c.layer); err != nil {
						return nil, err
					}
					encW[c.weights] = e
				}
				answers, _, err = askOurs(ctx, w.pipe, w.sess, e, c.opts, it)
			case c.ours == "llamacpp":
				if encL == nil {
					if encL, err = pipeL.Encode(ctx, it.img, 0); err != nil {
						return nil, err
					}
				}
				answers, _, err = askOurs(ctx, pipeL, sessL, encL, c.opts, it)
			default:
				e := encs[c.layer]
				if e == nil {
					if e, err = pipe.Encode(ctx, it.img, c.layer); err != nil {
						return nil, err
					}
					encs[c.layer] = e
				}
				var pr *llava.Pruned
				answers, pr, err = askOurs(ctx, pipe, sess, e, c.opts, it)
				if err == nil && cfg.MaskDir != "" && sc < MaskScenes && c.row.Fraction == "1/9" &&
					c.row.Group == "budget" && (c.opts.Method == llava.MethodHiPrune || c.opts.Method == llava.MethodUniform) {
					err = writeMask(cfg.MaskDir, pipe, pr, c.opts, it)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("scene %d, %s: %w", sc, c.row.Name, err)
			}
			for i, qa := range it.qas {
				c.row.add(qa.Template, testbed.Score(answers[i], qa.Answer))
			}
		}
		for _, e := range encs {
			e.Release()
		}
		for _, e := range encW {
			e.Release()
		}
		if encL != nil {
			encL.Release()
		}
		if (sc+1)%50 == 0 || sc+1 == cfg.Scenes {
			none := rep.byName["none"]
			log.Info("eval", "scenes", sc+1, "questions", rep.Questions, "none", fmt.Sprintf("%.3f", none.frac()),
				"s", int(time.Since(rep.start).Seconds()))
		}
	}
	for _, r := range rep.Rows {
		r.finish()
	}
	rep.Seconds = math.Round(time.Since(rep.start).Seconds()*10) / 10
	return rep, nil
}

// plan lists the configurations in table order.
func plan(rep *Report, cfg Config, n, depth int) []config {
	var cs []config
	add := func(c config) {
		rep.Rows = append(rep.Rows, c.row)
		rep.byName[c.row.Name] = c.row
		cs = append(cs, c)
	}
	ninth := Fractions[2]
	if !cfg.Quick {
		add(config{row: &Row{Name: "mtmd (llama.cpp)", Group: "reference", Method: "none", Keep: n}, mtmd: true})
		add(config{row: &Row{Name: "none, --clip-layout llama.cpp", Group: "reference", Method: "none", Keep: n},
			ours: "llamacpp", opts: llava.Options{Method: llava.MethodNone}})
	}
	add(config{row: &Row{Name: "none", Group: "reference", Method: "none", Keep: n}, opts: llava.Options{Method: llava.MethodNone},
		layer: cfg.ObjectLayer})
	methods := []llava.Method{llava.MethodHiPrune, llava.MethodUniform, llava.MethodRandom}
	fracs := Fractions
	if cfg.Quick {
		methods = methods[:2]
		fracs = []Fraction{ninth}
	}
	for _, f := range fracs {
		for _, m := range methods {
			k := f.Keep(n)
			fs := fmt.Sprintf("%d/%d", f.Num, f.Den)
			r := &Row{Name: fmt.Sprintf("%s-%d", m, k), Group: "budget", Method: string(m), Keep: k, Fraction: fs}
			o := llava.Options{Method: m, Keep: k}
			if m == llava.MethodHiPrune {
				r.Alpha, r.ObjectLayer = 0.1, cfg.ObjectLayer
				o.ObjectLayer = cfg.ObjectLayer
			}
			add(config{row: r, opts: o, layer: cfg.ObjectLayer})
		}
	}
	if cfg.Quick {
		return cs
	}
	k := ninth.Keep(n)
	for l := 1; l <= depth; l++ {
		add(config{row: &Row{Name: fmt.Sprintf("hiprune-%d layer %d", k, l), Group: "layer", Method: "hiprune", Keep: k,
			Fraction: "1/9", Alpha: 0.1, ObjectLayer: l},
			opts: llava.Options{Method: llava.MethodHiPrune, Keep: k, ObjectLayer: l}, layer: l})
	}
	for _, wt := range WeightTypes {
		add(config{row: &Row{Name: "none, encoder " + wt, Group: "weights", Method: "none", Keep: n, Weights: wt},
			opts: llava.Options{Method: llava.MethodNone}, layer: cfg.ObjectLayer, weights: wt})
		add(config{row: &Row{Name: fmt.Sprintf("hiprune-%d, encoder %s", k, wt), Group: "weights", Method: "hiprune", Keep: k,
			Fraction: "1/9", Alpha: 0.1, ObjectLayer: cfg.ObjectLayer, Weights: wt},
			opts: llava.Options{Method: llava.MethodHiPrune, Keep: k, ObjectLayer: cfg.ObjectLayer}, layer: cfg.ObjectLayer, weights: wt})
	}
	for _, a := range Alphas {
		// Options.Alpha 0 means the default (0.1); the smallest positive
		// alpha gives round(N'*alpha/5) = 0 anchors, which is alpha 0.
		oa := a
		if a == 0 {
			oa = math.SmallestNonzeroFloat64
		}
		add(config{row: &Row{Name: fmt.Sprintf("hiprune-%d alpha %g", k, a), Group: "alpha", Method: "hiprune", Keep: k,
			Fraction: "1/9", Alpha: a, ObjectLayer: cfg.ObjectLayer},
			opts: llava.Options{Method: llava.MethodHiPrune, Keep: k, Alpha: oa, ObjectLayer: cfg.ObjectLayer}, layer: cfg.ObjectLayer})
	}
	return cs
}

func makeItem(seed uint64, sc int) item {
	s := testbed.GenScene(seed, sc)
	rgb := &imageprep.RGB{W: testbed.ImageSize, H: testbed.ImageSize, Pix: s.RGB()}
	return item{
		scene: sc,
		img:   &llava.Image{Name: fmt.Sprintf("scene %d", sc), RGB: rgb},
		qas:   testbed.Questions(s, seed, sc),
	}
}

// greedy answers: up to maxAnswer tokens, enough for the first word.
const maxAnswer = 3

// open loads the pair with one session (the questions are asked one after
// another, each in a cleared context).
func open(ctx context.Context, cfg Config, layout bridge.Layout, weights string) (*llava.Pipeline, *llava.Session, error) {
	p, err := llava.Open(ctx, llava.Config{Model: cfg.LM, MMProj: cfg.MMProj, Threads: cfg.Threads, Layout: layout,
		EncoderWeights: weights, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	s, err := p.NewSession(llava.SessionConfig{NCtx: 1024})
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, s, nil
}

// askOurs prunes the encoded image once as o says and asks every question
// about it; it returns the answers and the selection.
func askOurs(ctx context.Context, p *llava.Pipeline, s *llava.Session, e *llava.Encoded, o llava.Options, it item) ([]string, *llava.Pruned, error) {
	if o.Method == llava.MethodRandom {
		o.Seed = uint64(it.scene) + 1
	}
	pr, err := p.Prune(ctx, e, o)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, len(it.qas))
	for i, qa := range it.qas {
		s.Reset()
		gen := llava.GenOptions{MaxTokens: maxAnswer, Temp: 0}
		ans, _, err := s.Ask(ctx, llava.Turn{Text: qa.Question, Prepared: []*llava.Pruned{pr}, Prune: o, Gen: gen})
		if err != nil {
			return nil, nil, err
		}
		out[i] = ans
	}
	return out, pr, nil
}

// askMtmd runs llama.cpp's own path: mtmd tokenizes the same LLaVA-1.5
// prompt with its marker, encodes the image with clip.cpp and evaluates
// everything; the answer is sampled greedily from that context.
func askMtmd(mt *bridge.Mtmd, lctx *bridge.Context, m *bridge.Model, it item) ([]string, error) {
	out := make([]string, len(it.qas))
	for i, qa := range it.qas {
		lctx.ClearKV()
		prompt := PromptBefore + bridge.MtmdMarker() + PromptAfter(qa.Question)
		ch, err := mt.Tokenize(prompt, []*imageprep.RGB{it.img.RGB}, true)
		if err != nil {
			return nil, err
		}
		pos, _, err := mt.Eval(lctx, ch, 0, true)
		ch.Free()
		if err != nil {
			return nil, err
		}
		smp := bridge.NewSampler(bridge.SamplerParams{Temp: 0})
		var b strings.Builder
		for k := 0; k < maxAnswer; k++ {
			tok := smp.Sample(lctx)
			if m.IsEOG(tok) {
				break
			}
			b.Write(m.TokenPiece(tok))
			if k+1 == maxAnswer {
				break
			}
			if err := lctx.DecodeTokens([]int32{tok}, pos, true); err != nil {
				smp.Close()
				return nil, err
			}
			pos++
		}
		smp.Close()
		out[i] = b.String()
	}
	return out, nil
}

func writeMask(dir string, p *llava.Pipeline, pr *llava.Pruned, o llava.Options, it item) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("scene%02d-%s-%d.png", it.scene, o.Method, o.Keep))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := imageprep.WriteMaskPNG(f, it.img.RGB, p.ImageParams(), pr.GridW, pr.GridH, pr.Kept); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *Row) add(tmpl string, ok bool) {
	if r.PerTemplate == nil {
		r.PerTemplate = map[string]Acc{}
	}
	a := r.PerTemplate[tmpl]
	a.Total++
	r.Total++
	if ok {
		a.Right++
		r.Right++
	}
	r.PerTemplate[tmpl] = a
}

func (r *Row) frac() float64 {
	if r == nil || r.Total == 0 {
		return 0
	}
	return float64(r.Right) / float64(r.Total)
}

func (r *Row) finish() {
	r.Acc = round4(r.frac())
	lo, hi := Wilson(r.Right, r.Total)
	r.Lo, r.Hi = round4(lo), round4(hi)
	for k, a := range r.PerTemplate {
		a.Acc = round4(float64(a.Right) / float64(max(a.Total, 1)))
		r.PerTemplate[k] = a
	}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Wilson is the 95% Wilson score interval of k successes in n trials.
func Wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	nf := float64(n)
	d := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / d
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / d
	return math.Max(0, c-h), math.Min(1, c+h)
}

// WriteTable prints the report as Markdown tables.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "Testbed accuracy: %d held-out questions on %d scenes (seed %d), grid %dx%d, %d encoder blocks, HiPrune object layer %d; %s, %d threads, %.0f s\n\n",
		r.Questions, r.Scenes, r.Seed, r.GridW, r.GridH, r.Blocks, r.ObjectLayer, r.CPU, r.Threads, r.Seconds)
	fmt.Fprintln(w, "| config | kept | of 576 | accuracy | 95% interval |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, x := range r.Rows {
		if x.Group == "reference" || x.Group == "budget" {
			fmt.Fprintf(w, "| %s | %d | %s | %.3f | %.3f-%.3f |\n", x.Name, x.Keep, of576(x), x.Acc, x.Lo, x.Hi)
		}
	}
	fmt.Fprintln(w)
	ninth := Fractions[2].Keep(r.GridW * r.GridH)
	fmt.Fprintf(w, "Per template, %d kept (1/9 of the grid):\n\n", ninth)
	fmt.Fprintln(w, "| config | "+strings.Join(testbed.Templates, " | ")+" |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("---|", len(testbed.Templates)))
	for _, x := range r.Rows {
		if x.Name == "none" || (x.Group == "budget" && x.Keep == ninth) {
			fmt.Fprintf(w, "| %s |", x.Name)
			for _, t := range testbed.Templates {
				a := x.PerTemplate[t]
				fmt.Fprintf(w, " %.3f (%d) |", a.Acc, a.Total)
			}
			fmt.Fprintln(w)
		}
	}
	for _, g := range []struct{ group, title string }{{"layer", "Object-layer sweep, HiPrune %d kept"},
		{"alpha", "Alpha sweep, HiPrune %d kept"},
		{"weights", "Quantized encoder weights (--encoder-type), unpruned and HiPrune %d kept"}} {
		var rows []*Row
		for _, x := range r.Rows {
			if x.Group == g.group {
				rows = append(rows, x)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n"+g.title+":\n\n| config | accuracy | 95%% interval |\n|---|---|---|\n", ninth)
		for _, x := range rows {
			fmt.Fprintf(w, "| %s | %.3f | %.3f-%.3f |\n", x.Name, x.Acc, x.Lo, x.Hi)
		}
	}
}

func of576(x *Row) string {
	if x.Fraction == "" {
		return "576"
	}
	for _, f := range Fractions {
		if fmt.Sprintf("%d/%d", f.Num, f.Den) == x.Fraction {
			return fmt.Sprint(f.Of576)
		}
	}
	return ""
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Answer is one greedy unpruned answer (for parity checks against the
// training script's own forward pass).
type Answer struct {
	Index    int     `json:"index"`
	Question string  `json:"question"`
	Answer   string  `json:"answer"`
	Top      int     `json:"top"`   // the first answer token's id (argmax)
	Logit    float32 `json:"logit"` // and its logit
	Second   int     `json:"second"`
	Logit2   float32 `json:"logit2"`
}

// Answers asks every question of scenes 0..n-1 of cfg.Seed unpruned.
func Answers(ctx context.Context, cfg Config, n int) ([]Answer, error) {
	pipe, sess, err := open(ctx, cfg, bridge.LayoutCLSFirst, "")
	if err != nil {
		return nil, err
	}
	defer pipe.Close()
	defer sess.Close()
	var out []Answer
	none := llava.Options{Method: llava.MethodNone}
	for sc := 0; sc < n; sc++ {
		it := makeItem(cfg.Seed, sc)
		e, err := pipe.Encode(ctx, it.img, 0)
		if err != nil {
			return nil, err
		}
		pr, err := pipe.Prune(ctx, e, none)
		e.Release()
		if err != nil {
			return nil, err
		}
		for _, qa := range it.qas {
			sess.Reset()
			turn := llava.Turn{Text: qa.Question, Prepared: []*llava.Pruned{pr}, Prune: none,
				Gen: llava.GenOptions{MaxTokens: maxAnswer}}
			r, err := sess.Prefill(ctx, turn)
			if err != nil {
				return nil, err
			}
			a := Answer{Index: sc, Question: qa.Question}
			a.Top, a.Logit, a.Second, a.Logit2 = top2(sess.Context().Logits())
			ans, err := r.Generate(ctx)
			if err != nil {
				return nil, err
			}
			a.Answer = testbed.FirstWord(ans)
			out = append(out, a)
		}
	}
	return out, nil
}

func top2(l []float32) (i1 int, v1 float32, i2 int, v2 float32) {
	v1, v2 = float32(math.Inf(-1)), float32(math.Inf(-1))
	for i, v := range l {
		switch {
		case v > v1:
			i2, v2 = i1, v1
			i1, v1 = i, v
		case v > v2:
			i2, v2 = i, v
		}
	}
	return
}
