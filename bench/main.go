// Command bench measures what HiPrune buys at real model shapes: time to
// first token, prefill, decode speed and the image's KV-cache memory, for
// llama.cpp's own multimodal path (mtmd, the baseline a llama.cpp user has
// today), our pipeline unpruned, and our pipeline keeping N' image tokens.
// It also times our instrumented vision encoder against llama.cpp's clip.
//
//	go run ./bench -model 1b -runs 5 -out bench/results   (make bench)
//	go run ./bench -model 7b -runs 3 -out bench/results   (make bench MODEL=7b)
//	go run ./bench -model 1b-next -runs 3 -out bench/results   (make bench MODEL=1b-next)
//	go run ./bench -model qwen3b -runs 3 -out bench/results    (make bench MODEL=qwen3b)
//	go run ./bench -model gemma4b -runs 3 -out bench/results   (make bench MODEL=gemma4b)
//
// The -next presets are LLaVA-NeXT (1.6) pairs: a 672 x 672 image becomes a
// base view and 2 x 2 tiles, 2,880 tokens in llama.cpp's mtmd; the budgets
// are N' of those 2,880, applied as the fraction N'/2,880 of the image's
// tokens in our (as-trained) layout.
//
// The Qwen2.5-VL presets (qwen3b: Qwen2.5-VL-3B's shapes) take a 1024 x
// 1024 image, which the smart resize makes 1036 x 1036, 37 x 37 = 1,369
// merged tokens; the budgets are the authors' retention ratios (-keep-ratio,
// rows hiprune-r0.334, ...). Their encoder comparison runs -runs times, and
// the resent-conversation section (LLaVA-1.5 presets only) is left out.
//
// The Gemma 3 presets (gemma4b: Gemma-3-4B's shapes) take any image to
// 896 x 896, 256 pooled tokens; the budgets are N' of those 256 (default
// 85, 64, 32: a third, then the two LLaVA-like counts). As for Qwen2.5-VL,
// each encode (4,096 patches through 27 blocks) is long, so the encoder
// comparison runs -runs times and there is no resent-conversation section.
//
// The model pair is generated on demand (deterministic random weights, see
// tests/testmodel) into $HIPRUNE_MODELS_DIR. Everything runs in one process
// and the configurations alternate run by run (with a rotating start), so
// drift in the machine's speed hits all of them alike; the figures reported
// are medians over runs. Progress goes to stderr, the table to stdout and
// the figures as JSON to OUT/<model>.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// defaultQuestion makes the LLaVA-1.5 prompt "USER: <image>\n{q} ASSISTANT:"
// about 36 text tokens with the generated models' vocabulary.
const defaultQuestion = "What is in this picture? Describe the shapes, their colours and where they are."

type options struct {
	turn2Only bool
	encOnly   bool
	q8        bool
	noRepack  bool // -no-repack: every weight in ggml's plain CPU buffer
	repackRow bool // -repack-row: row none-norepack
	model     string
	runs      int
	encRuns   int
	out       string
	modelsDir string
	threads   int
	nCtx      int
	nBatch    int
	nPredict  int
	keeps     []int
	ratios    []float64 // a Qwen2.5-VL preset's budgets (-keep-ratio)
	next      bool      // a LLaVA-NeXT preset: -keep are N' of nextTokens, applied as fractions
	qwen      bool      // a Qwen2.5-VL preset: -keep-ratio are the budgets
	gemma     bool      // a Gemma 3 preset: -keep are N' of 256
	question  string
	imgW      int
	imgH      int
	seed      uint64
	verbose   bool
	// GPU: -ngl LM layers offloaded, and both encoders (ours and
	// llama.cpp's clip inside mtmd) on the GPU with -encoder-gpu.
	ngl        int
	encoderGPU bool
	prepare    bool   // only generate the model pair
	device     string // the GPU and what runs on it, for the report
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.model, "model", "1b", "model preset: "+strings.Join(testmodel.Presets, "|"))
	fs.IntVar(&o.runs, "runs", 0, "timed runs of each configuration (0 = 3 for 7b, 5 otherwise)")
	fs.IntVar(&o.encRuns, "enc-runs", 0, "timed runs of each encoder in the encoder comparison (0 = max(5, runs))")
	fs.StringVar(&o.out, "out", "", "directory for <model>.json (empty: no JSON)")
	fs.StringVar(&o.modelsDir, "models", "", "where generated models are cached (default $HIPRUNE_MODELS_DIR, else ~/.cache/hiprune-go/models)")
	fs.IntVar(&o.threads, "threads", 0, "threads for the encoders and the LM (0 = all cores)")
	fs.IntVar(&o.nCtx, "ctx", 4096, "LM context length (the same for every configuration)")
	fs.IntVar(&o.nBatch, "batch", 512, "LM batch size")
	fs.IntVar(&o.nPredict, "n", 16, "tokens generated per run (greedy)")
	keep := fs.String("keep", "", "comma-separated HiPrune budgets N' (default 192,128,64; for -next presets 640,320,160 of 2880, applied as fractions; for Gemma 3 presets 85,64,32)")
	keepRatio := fs.String("keep-ratio", "", "comma-separated HiPrune retention ratios for Qwen2.5-VL presets (default 0.334,0.223,0.112)")
	fs.StringVar(&o.question, "question", defaultQuestion, "the question asked about the image")
	fs.IntVar(&o.imgW, "width", 640, "sample image width")
	fs.IntVar(&o.imgH, "height", 480, "sample image height")
	fs.Uint64Var(&o.seed, "seed", 1, "sample image seed")
	fs.BoolVar(&o.turn2Only, "turn2-only", false, "measure only turn 2 of a resent conversation (none and hiprune-64), no JSON")
	fs.BoolVar(&o.q8, "q8", true, "LLaVA presets: also time our encoder with q8_0 weights (--encoder-type q8_0), alone and as row hiprune-64-q8")
	fs.BoolVar(&o.noRepack, "no-repack", false, "keep every weight, the LM's and our encoders', in ggml's plain CPU buffer (chat --no-repack; llama.cpp's clip always does)")
	fs.BoolVar(&o.repackRow, "repack-row", true, "also run row "+plainName+": none with every weight in ggml's plain CPU buffer (a second copy of the LM), to time ggml's repacked weights side by side")
	fs.BoolVar(&o.encOnly, "encoder-only", false, "measure only the encoders (ours whole, ours as HiPrune N' = 64 runs it, clip), no JSON")
	fs.BoolVar(&o.verbose, "v", false, "debug logging: llama.cpp's logs and each run's answer")
	fs.IntVar(&o.ngl, "ngl", 0, "LM layers offloaded to a GPU, as llama.cpp's -ngl (99: all), for every configuration")
	fs.BoolVar(&o.encoderGPU, "encoder-gpu", false, "run our encoder and llama.cpp's clip (mtmd) on the GPU")
	fs.BoolVar(&o.prepare, "prepare", false, "generate the model pair into the models folder and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	_, clipSpec, err := testmodel.PresetPair(o.model)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	o.qwen = clipSpec.Projector == testmodel.ProjectorQwen25VL
	o.gemma = clipSpec.Projector == testmodel.ProjectorGemma3
	if o.runs < 0 || o.encRuns < 0 || o.nPredict < 1 || o.nBatch < 1 || o.nCtx < 1 || o.threads < 0 || o.ngl < 0 {
		return nil, fmt.Errorf("%w: -runs, -enc-runs, -threads and -ngl must be >= 0, -n, -batch and -ctx >= 1", errUsage)
	}
	o.next = strings.HasSuffix(o.model, "-next")
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.next && !set["width"] && !set["height"] {
		// The image: exactly the 2 x 2 pinpoint, nothing cropped.
		o.imgW, o.imgH = 672, 672
	}
	if o.qwen && !set["width"] && !set["height"] {
		// The image: 1,369 merged tokens after the smart resize.
		o.imgW, o.imgH = 1024, 1024
	}
	switch {
	case o.qwen && *keep != "":
		return nil, fmt.Errorf("%w: -keep: Qwen2.5-VL presets take -keep-ratio", errUsage)
	case !o.qwen && *keepRatio != "":
		return nil, fmt.Errorf("%w: -keep-ratio: for Qwen2.5-VL presets only (the others take -keep)", errUsage)
	}
	if o.qwen {
		if *keepRatio == "" {
			*keepRatio = "0.334,0.223,0.112"
		}
		for _, f := range strings.Split(*keepRatio, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			r, err := strconv.ParseFloat(f, 64)
			if err != nil || !(r > 0 && r <= 1) {
				return nil, fmt.Errorf("%w: -keep-ratio: %q is not a ratio in (0, 1]", errUsage, f)
			}
			o.ratios = append(o.ratios, r)
		}
	} else if *keep == "" {
		*keep = "192,128,64"
		if o.next {
			*keep = "640,320,160"
		}
		if o.gemma {
			*keep = "85,64,32"
		}
	}
	if o.runs == 0 {
		o.runs = 5
		if o.model == "7b" || o.next || o.qwen || o.gemma {
			o.runs = 3
		}
	}
	if o.encRuns == 0 {
		o.encRuns = max(5, o.runs)
		if o.qwen || o.gemma {
			// A 1,369-token image through 32 blocks of 1280 (Qwen), 4,096
			// patches through 27 blocks of 1152 (Gemma): each encode is
			// long enough to time well, and there are two per run.
			o.encRuns = o.runs
		}
	}
	if o.threads == 0 {
		o.threads = runtime.NumCPU()
	}
	for _, f := range strings.Split(*keep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: -keep: %q is not a positive token count", errUsage, f)
		}
		o.keeps = append(o.keeps, n)
	}
	if o.modelsDir == "" {
		o.modelsDir = os.Getenv("HIPRUNE_MODELS_DIR")
	}
	if o.modelsDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no -models and no HIPRUNE_MODELS_DIR: %w", err)
		}
		o.modelsDir = filepath.Join(home, ".cache", "hiprune-go", "models")
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	bridge.SetVerbose(o.verbose)
	began := time.Now()

	lmSpec, clipSpec, _ := testmodel.PresetPair(o.model)
	log.Info("preparing models", "preset", o.model, "dir", o.modelsDir,
		"lm_params_b", fmt.Sprintf("%.2f", float64(lmSpec.ParamCount())/1e9),
		"mmproj_params_m", fmt.Sprintf("%.0f", float64(clipSpec.ParamCount())/1e6))
	t0 := time.Now()
	lmPath, mmPath, err := testmodel.Ensure(o.modelsDir, o.model, lmSpec, clipSpec)
	if err != nil {
		return fmt.Errorf("generating the %s pair: %w", o.model, err)
	}
	log.Info("models ready", "lm", lmPath, "mmproj", mmPath, "s", secs(time.Since(t0)))
	if o.prepare {
		return nil
	}
	if o.ngl > 0 || o.encoderGPU {
		dev, ok := bridge.EncoderDevice(true)
		if !ok {
			return fmt.Errorf("-ngl %d / -encoder-gpu: ggml registers no GPU device (see third_party/README.md: make cuda)", o.ngl)
		}
		o.device = fmt.Sprintf("%s (%s), -ngl %d, encoders on the GPU: %v", dev.Description, dev.Name, o.ngl, o.encoderGPU)
		log.Info("GPU", "device", o.device)
	}

	rgb, err := imageprep.FromImage(testmodel.SampleImage(o.imgW, o.imgH, o.seed))
	if err != nil {
		return fmt.Errorf("sample image: %w", err)
	}

	b, err := newBench(ctx, o, lmPath, mmPath, rgb, log)
	if err != nil {
		return err
	}
	defer b.close()

	var enc encoderResult
	var rows []rowSamples
	if !o.turn2Only {
		if enc, err = b.encoderComparison(ctx); err != nil {
			return err
		}
		if !o.encOnly {
			if rows, err = b.endToEnd(ctx); err != nil {
				return err
			}
		}
	}
	var resend []Resend
	if !o.next && !o.qwen && !o.gemma && !o.encOnly {
		names := []string{"none"}
		opts := []llava.Options{{Method: llava.MethodNone}}
		if slices.Contains(o.keeps, 64) {
			names, opts = append(names, "hiprune-64"), append(opts, llava.Options{Method: llava.MethodHiPrune, Keep: 64})
		}
		if resend, err = b.resend(ctx, names, opts, lmPath); err != nil {
			return fmt.Errorf("turn 2: %w", err)
		}
	}
	rep := buildReport(o, b.textTokens, enc, rows, b.pruned())
	rep.Resend = resend
	rep.ImageNote = b.imageNote()
	if o.turn2Only || o.encOnly {
		rep.print(os.Stdout)
		return nil
	}
	rep.PeakRSSMiB = peakRSSMiB()
	rep.WallS = time.Since(began).Seconds()
	rep.print(os.Stdout)
	if o.out != "" {
		path, err := rep.write(o.out)
		if err != nil {
			return err
		}
		log.Info("wrote results", "path", path)
	}
	log.Info("done", "wall_s", secs(time.Since(began)))
	return nil
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of xs (the mean of the middle two for an even count); 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
