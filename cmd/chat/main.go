// Command chat talks to a LLaVA-style model about images, pruning the image
// tokens with HiPrune before they reach the language model.
//
//	chat -m model.gguf --mmproj mmproj.gguf --image cat.jpg -p "What is this?" --keep 64
//
// With -p it answers once and exits; without, it reads messages from stdin
// (commands: /image PATH, /keep N, /reset, /quit). Answers go to stdout,
// progress and timings to stderr. Exit status: 0 success, 1 runtime error,
// 2 usage error. "chat serve" runs an OpenAI-compatible HTTP server over
// the same model and flags (serve.go).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hiprune/hiprune-go/internal/fsutil"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	model, mmproj, prompt, pruneMethod, saveMask, template, layout, encoderType string
	encoderFA                                                                   string
	encoderFlash                                                                llava.FlashAttn // encoderFA, parsed by validate
	images                                                                      stringList
	nPredict, nCtx, threads, nBatch, ngl, keep, objectLayer, topK               int
	keepRatio, alpha                                                            float64
	temp, topP, minP, repeatPenalty                                             float64
	seed                                                                        int64
	timings, verbose, encoderGPU, noRepack                                      bool
	set                                                                         map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	return parseCommand("chat", args, stderr, nil, printUsage)
}

// parseCommand parses the flags chat and chat serve share, plus the ones
// extra defines; usage prints -help.
func parseCommand(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet), usage func(io.Writer, *flag.FlagSet)) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.model, "m", "", "language model GGUF `file`")
	fs.StringVar(&o.model, "model", "", "same as -m")
	fs.StringVar(&o.mmproj, "mmproj", "", "vision projector GGUF `file`")
	fs.Var(&o.images, "image", "image `file` (JPEG, PNG, GIF, WebP); repeat for several")
	fs.StringVar(&o.prompt, "p", "", "prompt: answer once and exit (else interactive)")
	fs.StringVar(&o.prompt, "prompt", "", "same as -p")
	d := llava.DefaultGen()
	fs.IntVar(&o.nPredict, "n", d.MaxTokens, "max tokens to generate (-1: until end of generation, 0: none)")
	fs.IntVar(&o.nCtx, "c", llava.DefaultNCtx, "context size in tokens")
	fs.IntVar(&o.threads, "t", 0, "threads (0: all CPUs)")
	fs.IntVar(&o.nBatch, "b", llava.DefaultNBatch, "batch size for prompt evaluation")
	fs.IntVar(&o.ngl, "ngl", 0, "language-model layers to offload to a GPU (-1: all)")
	fs.BoolVar(&o.encoderGPU, "encoder-gpu", false, "run the vision encoder on a GPU when one is available")
	fs.Float64Var(&o.temp, "temp", f64(d.Temp), "temperature (0: greedy)")
	fs.IntVar(&o.topK, "top-k", d.TopK, "top-k sampling (0: off)")
	fs.Float64Var(&o.topP, "top-p", f64(d.TopP), "top-p sampling (1: off)")
	fs.Float64Var(&o.minP, "min-p", f64(d.MinP), "min-p sampling (0: off)")
	fs.Float64Var(&o.repeatPenalty, "repeat-penalty", f64(d.RepeatPenalty), "repetition penalty (1: off)")
	fs.Int64Var(&o.seed, "seed", -1, "sampling seed (-1: random)")
	fs.StringVar(&o.pruneMethod, "prune", "hiprune", "token pruning: hiprune, none, uniform, random")
	fs.IntVar(&o.keep, "keep", 0, "image tokens to keep per image (N')")
	fs.Float64Var(&o.keepRatio, "keep-ratio", 0, "fraction of image tokens to keep, in (0,1] (default 1/3; 1/9 for LLaVA-NeXT; 0.334 for Qwen2.5-VL)")
	fs.Float64Var(&o.alpha, "alpha", llava.DefaultAlpha, "HiPrune anchor fraction, in [0,1]")
	fs.IntVar(&o.objectLayer, "object-layer", llava.DefaultObjectLayer, "encoder block (1-based) whose attention picks the anchors (16 for Qwen2.5-VL, 13 for Gemma 3 when not given)")
	fs.StringVar(&o.encoderType, "encoder-type", "", "vision encoder matrix weights: f16, q8_0 or q4_0, converted at load (default: as stored in the mmproj)")
	fs.StringVar(&o.layout, "clip-layout", "cls-first", "encoder token order: cls-first (CLIP's) or llama.cpp (bit-exact with the pinned llama.cpp, with --encoder-flash-attn on)")
	fs.StringVar(&o.encoderFA, "encoder-flash-attn", "auto", "vision encoder flash attention: auto (on where the device supports it, off for CLIP on the CPU, where it is slower), on or off")
	fs.BoolVar(&o.noRepack, "no-repack", false, "keep quantized weights in ggml's plain CPU layout (as llama.cpp's --no-repack); by default the LM's and the encoder's are repacked for the CPU's int8 kernels")
	fs.StringVar(&o.template, "chat-template", "", "chat template name or text (default: the model's; \"llava\": USER/ASSISTANT)")
	fs.BoolVar(&o.timings, "timings", false, "print timings to stderr")
	fs.StringVar(&o.saveMask, "save-mask", "", "write the image with pruned patches dimmed to this PNG `file` (LLaVA-NeXT: base view and tiles side by side; Qwen2.5-VL: its resized image's 28 px tokens)")
	fs.BoolVar(&o.verbose, "verbose", false, "show llama.cpp's logs")
	// flag calls Usage on -help and on every parse error; print it once, for -help only.
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stderr, fs)
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (flags come as -name value)", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// f64 widens a float32 default by its shortest decimal form, so that
// -help shows 0.8, not 0.800000011920929.
func f64(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `chat: ask a LLaVA-style model about images, with HiPrune visual-token pruning.
LLaVA-1.5, LLaVA-NeXT, Qwen2.5-VL and Gemma 3 are pruned. Other vision models llama.cpp runs (Qwen2-VL,
SmolVLM, Pixtral, ...) answer unpruned, through llama.cpp's mtmd.

Usage:
  chat -m MODEL.gguf --mmproj MMPROJ.gguf --image IMG [--image IMG2] -p "question" [--keep 64]
  chat -m MODEL.gguf --mmproj MMPROJ.gguf            (interactive; reads stdin)
  chat serve -m MODEL.gguf --mmproj MMPROJ.gguf      (OpenAI-compatible server; chat serve --help)

Interactive commands: /image PATH (attach to the next message), /keep N, /reset, /quit

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// validate turns flags into pipeline options; every problem is a usage error.
func (o *options) validate() (llava.Options, llava.GenOptions, llava.Layout, error) {
	var po llava.Options
	var g llava.GenOptions
	if o.model == "" {
		return po, g, 0, usagef("missing -m MODEL.gguf")
	}
	m, err := llava.ParseMethod(o.pruneMethod)
	if err != nil {
		return po, g, 0, usagef("--prune %q: want hiprune, none, uniform or random", o.pruneMethod)
	}
	po.Method = m
	if o.set["keep"] && o.set["keep-ratio"] {
		return po, g, 0, usagef("--keep and --keep-ratio are exclusive")
	}
	if err := llava.CheckEncoderWeights(o.encoderType); err != nil {
		return po, g, 0, flagError(err)
	}
	if o.encoderFlash, err = llava.ParseFlashAttn(o.encoderFA); err != nil {
		return po, g, 0, flagError(err)
	}
	// In the library 0 means "the default"; given as a flag it is a mistake.
	for _, z := range []struct {
		flag string
		zero bool
		want string
	}{
		{"keep", o.keep == 0, "must be at least 1"},
		{"keep-ratio", o.keepRatio == 0, "must be in (0, 1]"},
		{"object-layer", o.objectLayer == 0, "must be at least 1"},
	} {
		if o.set[z.flag] && z.zero {
			return po, g, 0, usagef("--%s 0: %s", z.flag, z.want)
		}
	}
	if o.set["keep"] {
		po.Keep = o.keep
	}
	if o.set["keep-ratio"] {
		po.KeepRatio = o.keepRatio
	}
	if o.set["object-layer"] {
		po.ObjectLayer = o.objectLayer
	}
	po.Alpha = o.alpha
	if err := po.Validate(); err != nil {
		return po, g, 0, flagError(err)
	}
	layout := llava.LayoutCLSFirst
	switch o.layout {
	case "cls-first":
	case "llama.cpp", "llamacpp":
		layout = llava.LayoutLlamaCpp
	default:
		return po, g, 0, usagef("--clip-layout %q: want cls-first or llama.cpp", o.layout)
	}
	if o.nPredict < -1 {
		return po, g, 0, usagef("-n %d: want a token count, 0, or -1 for no limit", o.nPredict)
	}
	if o.nCtx < 16 {
		return po, g, 0, usagef("-c %d: context must be at least 16 tokens", o.nCtx)
	}
	if o.nBatch < 1 {
		return po, g, 0, usagef("-b %d: batch must be at least 1", o.nBatch)
	}
	if o.threads < 0 {
		return po, g, 0, usagef("-t %d: threads must be >= 0", o.threads)
	}
	seed := uint32(time.Now().UnixNano())
	if o.seed >= 0 {
		seed = uint32(o.seed)
	}
	g = llava.GenOptions{
		MaxTokens: o.nPredict, Temp: float32(o.temp), TopK: o.topK, TopP: float32(o.topP), MinP: float32(o.minP),
		RepeatPenalty: float32(o.repeatPenalty), RepeatLastN: llava.DefaultGen().RepeatLastN, Seed: seed,
	}
	if err := g.Validate(); err != nil {
		return po, g, 0, flagError(err)
	}
	po.Seed = uint64(seed)
	return po, g, layout, nil
}

// flagError words a library option error as the flag that set it.
func flagError(err error) error {
	var oe *llava.OptionError
	if !errors.As(err, &oe) {
		return usageError{err.Error()}
	}
	return usagef("--%s %v: %s", oe.Option, oe.Value, oe.Want)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return serve(ctx, args[1:], stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "chat: %v (see chat --help)\n", err)
		return 2
	}
	po, gen, layout, err := o.validate()
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v (see chat --help)\n", err)
		return 2
	}
	if err := chat(ctx, o, po, gen, layout, stdin, stdout, stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, llava.ErrOptions) {
			fmt.Fprintf(stderr, "chat: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "chat: %v\n", oneLine(err))
		return 1
	}
	return 0
}

func oneLine(err error) string { return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ") }

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	lvl := slog.LevelInfo
	if verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: lvl,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func chat(ctx context.Context, o *options, po llava.Options, gen llava.GenOptions, layout llava.Layout,
	stdin io.Reader, stdout, stderr io.Writer) error {
	log := newLogger(stderr, o.verbose)
	slog.SetDefault(log)
	llava.SetVerbose(o.verbose)
	if len(o.images) > 0 && o.mmproj == "" {
		return usagef("--image needs --mmproj (the model's vision projector)")
	}
	if o.saveMask != "" && filepath.Ext(o.saveMask) == "" {
		return usagef("--save-mask %q: give a .png file name", o.saveMask)
	}
	if o.mmproj != "" && o.anyPruningFlag() {
		// From the header alone, so a flag that cannot apply fails before
		// any model loads; a file that cannot be read fails in Open below.
		if pr, err := llava.ReadProjector(o.mmproj); err == nil {
			if err := o.checkUnprunable(pr); err != nil {
				return err
			}
		}
	}
	c := &chatter{o: o, po: po, gen: gen, stdout: stdout, stderr: stderr, inputs: []string{o.model, o.mmproj}}
	c.inputs = append(c.inputs, o.images...)
	// Every output is checked before any model work: the mask is written
	// after the answer, and must never replace an input.
	if err := c.checkMasks(len(o.images)); err != nil {
		return err
	}
	threads := o.threads
	if n := llava.MaxThreads(); threads > n {
		fmt.Fprintf(stderr, "chat: -t %d: this machine has %d CPUs; using %d threads\n", threads, n, n)
		threads = n
	}
	fmt.Fprintf(stderr, "chat: loading %s\n", o.model)
	p, err := llava.Open(ctx, llava.Config{
		Model: o.model, MMProj: o.mmproj, Threads: threads, GPULayers: o.ngl, EncoderGPU: o.encoderGPU,
		Layout: layout, ObjectLayer: po.ObjectLayer, EncoderWeights: o.encoderType, EncoderFlashAttn: o.encoderFlash, NoRepack: o.noRepack, Logger: log,
	})
	if oe := (*llava.OptionError)(nil); errors.As(err, &oe) {
		// --encoder-type with a family mtmd runs: found once the files are read
		return fmt.Errorf("--%s %v: %s", oe.Option, oe.Value, oe.Want)
	}
	if err != nil {
		return err
	}
	defer p.Close()
	if pr := p.Projector(); pr.Type != "" && !pr.Pruning {
		if err := o.checkUnprunable(pr); err != nil {
			return err
		}
		c.po = llava.Options{Method: llava.MethodNone}
		if !o.set["prune"] { // --prune none asked for exactly this
			fmt.Fprintf(stderr, "chat: projector type %s: pruning is not available for this family yet; images run unpruned through llama.cpp's mtmd\n", pr)
		}
	}
	// Decode every image up front: a bad file fails before any output.
	imgs := make([]*llava.Image, 0, len(o.images))
	for _, path := range o.images {
		img, err := p.LoadImage(path)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	s, err := p.NewSession(llava.SessionConfig{NCtx: o.nCtx, NBatch: o.nBatch, Template: o.template})
	if err != nil {
		return err
	}
	defer s.Close()
	if n := s.NCtx(); n != o.nCtx {
		fmt.Fprintf(stderr, "chat: -c %d: llama.cpp rounds the context to %d tokens\n", o.nCtx, n)
	}
	c.p, c.s = p, s
	if o.set["p"] || o.set["prompt"] {
		return c.ask(ctx, o.prompt, imgs)
	}
	return c.interactive(ctx, stdin, imgs)
}

type chatter struct {
	o      *options
	p      *llava.Pipeline
	s      *llava.Session
	po     llava.Options
	gen    llava.GenOptions
	stdout io.Writer
	stderr io.Writer
	masks  int      // masks written so far
	inputs []string // every file read: outputs must never replace one
}

// maskPaths names the masks of the next turn's n images: --save-mask
// itself for the first single image, then NAME-k.png numbered across turns.
func (c *chatter) maskPaths(n int) []string {
	if c.o.saveMask == "" {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		k := c.masks + i + 1
		path := c.o.saveMask
		if k > 1 || n > 1 {
			ext := filepath.Ext(path)
			path = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), k, ext)
		}
		out[i] = path
	}
	return out
}

// checkMasks checks the next turn's mask paths before any work is done.
func (c *chatter) checkMasks(n int) error {
	for _, path := range c.maskPaths(max(n, 1)) {
		if err := fsutil.CheckOutput(path, c.inputs...); err != nil {
			if errors.Is(err, fsutil.ErrIsInput) {
				return usagef("--save-mask: %v", err)
			}
			return fmt.Errorf("--save-mask: %w", err)
		}
	}
	return nil
}

func (c *chatter) ask(ctx context.Context, text string, imgs []*llava.Image) error {
	if len(imgs) > 0 {
		if err := c.checkMasks(len(imgs)); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(c.stdout)
	wrote := false
	turn := llava.Turn{
		Text: text, Images: imgs, Prune: c.po, Gen: c.gen,
		OnToken: func(piece string) error {
			wrote = true
			if _, err := bw.WriteString(piece); err != nil {
				return err
			}
			return bw.Flush()
		},
		OnImage: func(is llava.ImageStats) {
			fmt.Fprintf(c.stderr, "chat: %s: %d -> %d image tokens (encode %s)\n", is.Name, is.TokensBefore, is.TokensAfter, ms(is.Encode))
		},
	}
	_, st, err := c.s.Ask(ctx, turn)
	if wrote {
		bw.WriteString("\n")
		bw.Flush()
	}
	if err != nil {
		return err
	}
	if st.StopReason == llava.StopContext {
		fmt.Fprintf(c.stderr, "chat: the answer stopped at the end of the %d-token context (/reset starts over; -c sets the size)\n", c.s.NCtx())
	}
	if c.o.saveMask != "" {
		if err := c.writeMasks(imgs, st); err != nil {
			return err
		}
	}
	if c.o.timings {
		printTimings(c.stderr, c.po, st)
	}
	return nil
}

func (c *chatter) writeMasks(imgs []*llava.Image, st *llava.Stats) error {
	paths := c.maskPaths(len(st.Images))
	for i, is := range st.Images {
		path := paths[i] // checked before the turn (checkMasks)
		c.masks++
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--save-mask: %w", err)
		}
		// One panel per view: LLaVA-NeXT's base view and its tiles.
		err = imageprep.WriteMasksPNG(f, imgs[i].RGB, is.Mask)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("--save-mask %s: %w", path, err)
		}
		fmt.Fprintf(c.stderr, "chat: wrote mask %s\n", path)
	}
	return nil
}

// maxLine is the longest message read from stdin.
const maxLine = 1 << 20

var errLineTooLong = fmt.Errorf("message longer than the %d-byte (1 MiB) line limit; not sent", maxLine)

// readLine returns the next line without its newline. A line over maxLine
// is read to its end and dropped with errLineTooLong, so the next line
// starts a fresh message.
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > maxLine+1 { // +1: the newline itself
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil && (long || len(buf) > 0) && err == io.EOF:
			// A last line without a newline.
		case err != nil:
			return "", err
		}
		if long {
			return "", errLineTooLong
		}
		return strings.TrimSuffix(string(buf), "\n"), nil
	}
}

func (c *chatter) interactive(ctx context.Context, stdin io.Reader, imgs []*llava.Image) error {
	br := bufio.NewReaderSize(stdin, 64<<10)
	pending := imgs
	for {
		if ctx.Err() != nil {
			return nil
		}
		raw, err := readLine(br)
		if errors.Is(err, errLineTooLong) {
			fmt.Fprintf(c.stderr, "chat: %v\n", err)
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			continue
		case line == "/quit" || line == "/exit":
			return nil
		case line == "/reset":
			c.s.Reset()
			pending = nil
			fmt.Fprintln(c.stderr, "chat: conversation reset")
		case strings.HasPrefix(line, "/image"):
			path := strings.TrimSpace(strings.TrimPrefix(line, "/image"))
			if path == "" {
				fmt.Fprintln(c.stderr, "chat: /image needs a file")
				continue
			}
			img, err := c.p.LoadImage(path)
			if err != nil {
				fmt.Fprintf(c.stderr, "chat: %v\n", oneLine(err))
				continue
			}
			c.inputs = append(c.inputs, path)
			pending = append(pending, img)
			fmt.Fprintf(c.stderr, "chat: %s attached to the next message\n", path)
		case strings.HasPrefix(line, "/keep") && !c.p.Projector().Pruning && c.p.Projector().Type != "":
			fmt.Fprintf(c.stderr, "chat: /keep: pruning is not available for projector type %s; images run unpruned\n", c.p.Projector())
		case strings.HasPrefix(line, "/keep"):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "/keep")))
			if err != nil || n < 1 {
				fmt.Fprintln(c.stderr, "chat: /keep needs a whole number >= 1")
				continue
			}
			c.po.Keep, c.po.KeepRatio = n, 0
			if c.po.Method == llava.MethodNone {
				c.po.Method = llava.MethodHiPrune
			}
			fmt.Fprintf(c.stderr, "chat: keeping %d image tokens per image\n", n)
		case strings.HasPrefix(line, "/"):
			fmt.Fprintf(c.stderr, "chat: unknown command %s (try /image, /keep, /reset, /quit)\n", strings.Fields(line)[0])
		default:
			err := c.ask(ctx, line, pending)
			pending = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// A turn that fails leaves the session usable.
				fmt.Fprintf(c.stderr, "chat: %v\n", oneLine(err))
				if errors.Is(err, llava.ErrContextFull) {
					fmt.Fprintln(c.stderr, "chat: /reset starts a new conversation (-c sets the context size)")
				}
			}
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func printTimings(w io.Writer, po llava.Options, st *llava.Stats) {
	method := string(po.Method)
	if method == "" {
		method = "hiprune"
	}
	before, after := 0, 0
	var enc, sel time.Duration
	for _, is := range st.Images {
		before += is.TokensBefore
		after += is.TokensAfter
		enc += is.Encode + is.Preprocess
		sel += is.Select
	}
	fmt.Fprintf(w, "timings: prune=%s image_tokens=%d->%d encode=%s select=%.3f ms prefill=%s ttft=%s decode=%.1f tok/s (%d tokens) kv_cells=%d text_tokens=%d stop=%s\n",
		method, before, after, ms(enc), float64(sel.Nanoseconds())/1e6, ms(st.Prefill), ms(st.TTFT), st.DecodeTPS(), st.DecodeTokens, st.KVCells, st.TextTokens, st.StopReason)
}
