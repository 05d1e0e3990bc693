// Command testbed drives the accuracy testbed: it streams training scenes to
// the training script, tokenizes the question templates with llama.cpp's
// tokenizer, exports trained weights to a GGUF pair, and runs the accuracy
// evaluation through the llava pipeline.
//
//	testbed stream -seed S [-start I] [-n N]       scenes on stdout (JSON line + 336*336*3 RGB bytes each)
//	testbed tokens -out tokens.json                 token ids of every prompt piece and answer
//	testbed export -weights weights.bin -out DIR    DIR/lm.gguf and DIR/mmproj.gguf
//	testbed eval [-quick] [-out results.json]       the accuracy table (see tests/testbed/tbeval)
//	testbed scene -seed S -index I -out F.png         one scene as PNG; prints its questions as "template<TAB>question<TAB>answer"
//	testbed answers -seed S -n N                    unpruned greedy answers, JSON lines (parity with train.py --predict)
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/testbed"
	"github.com/hiprune/hiprune-go/tests/testbed/tbeval"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testbed stream|tokens|export|eval [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "stream":
		err = stream(args)
	case "tokens":
		err = tokens(args)
	case "export":
		err = export(args)
	case "eval":
		err = eval(ctx, args)
	case "answers":
		err = answers(ctx, args)
	case "scene":
		err = scene(args)
	default:
		fmt.Fprintf(os.Stderr, "testbed: unknown command %q\n", cmd)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

type objectRecord struct {
	Shape string  `json:"shape"`
	Color string  `json:"color"`
	CX    float64 `json:"cx"`
	CY    float64 `json:"cy"`
	Size  int     `json:"size"`
}

type qaRecord struct {
	Template string `json:"template"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// stream writes scenes for the training script: one JSON line (objects and
// questions), then the image as 336*336*3 RGB bytes. -n 0 streams until the
// reader goes away.
func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	seed := fs.Uint64("seed", 1, "scene seed")
	start := fs.Int("start", 0, "first scene index")
	n := fs.Int("n", 0, "number of scenes (0: endless)")
	fs.Parse(args)
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	for i := *start; *n == 0 || i < *start+*n; i++ {
		sc := testbed.GenScene(*seed, i)
		rec := struct {
			Index   int            `json:"index"`
			Objects []objectRecord `json:"objects"`
			QAs     []qaRecord     `json:"qas"`
		}{Index: i}
		for _, o := range sc.Objects {
			rec.Objects = append(rec.Objects, objectRecord{o.Shape, o.Color, o.CX, o.CY, o.Size})
		}
		for _, q := range testbed.Questions(sc, *seed, i) {
			rec.QAs = append(rec.QAs, qaRecord{q.Template, q.Question, q.Answer})
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return nil // reader closed the pipe
		}
		if _, err := w.Write(sc.RGB()); err != nil {
			return nil
		}
	}
	return w.Flush()
}

// tokens writes the token ids the pipeline gives each prompt piece with the
// testbed's vocabulary: the LLaVA-1.5 format "USER: <image>\n{q} ASSISTANT:"
// is evaluated as the text before the image (with BOS) and the text after
// it, each tokenized by llama.cpp separately, as llava.Session does.
func tokens(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ExitOnError)
	out := fs.String("out", "tokens.json", "output file")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "testbed-vocab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lmPath := filepath.Join(dir, "lm.gguf")
	if err := testmodel.WriteLM(lmPath, tbeval.LMSpec()); err != nil {
		return err
	}
	bridge.Init()
	m, err := bridge.LoadModel(lmPath, bridge.ModelParams{})
	if err != nil {
		return err
	}
	defer m.Close()
	tok := func(s string, bos bool) []int32 {
		ids, e := m.Tokenize(s, bos, true)
		if e != nil {
			err = e
		}
		return ids
	}
	table := struct {
		NVocab int                `json:"n_vocab"`
		EOS    int32              `json:"eos"`
		Prefix []int32            `json:"prefix"`
		Suffix map[string][]int32 `json:"suffix"`
		Answer map[string][]int32 `json:"answer"`
	}{NVocab: m.NVocab(), EOS: m.EOS(), Suffix: map[string][]int32{}, Answer: map[string][]int32{}}
	table.Prefix = tok(tbeval.PromptBefore, m.AddBOS())
	for _, q := range testbed.AllQuestions() {
		table.Suffix[q] = tok(tbeval.PromptAfter(q), false)
	}
	for _, a := range testbed.AllAnswers() {
		// what the model generates after "ASSISTANT:": the word as one
		// piece with SentencePiece's leading-space marker (llama.cpp's SPM
		// tokenizer adds that space itself)
		ids := tok(a, false)
		if len(ids) != 1 {
			return fmt.Errorf("answer %q is %d tokens %v, want one", a, len(ids), ids)
		}
		table.Answer[a] = ids
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(table, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// export reads the training script's weights file and writes the GGUF pair
// through testmodel's writers (the keys and tensor names llama.cpp reads;
// the mmproj as llama.cpp's legacy LLaVA converter writes it: the blocks up
// to the selected layer, no feature_layer key).
func export(args []string) error {
	fs := flag.NewFlagSet("export", flag.ExitOnError)
	in := fs.String("weights", "weights.bin", "weights written by train.py")
	out := fs.String("out", "tests/testbed/model", "output folder")
	fs.Parse(args)
	ws, cfg, err := readWeights(*in)
	if err != nil {
		return err
	}
	lm, clip := tbeval.LMSpec(), tbeval.ClipSpec()
	// The trained shapes must be the specs' shapes; the writers check every
	// tensor's element count, these catch a changed architecture early.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"lm_width", cfg.LMWidth, lm.NEmbd}, {"lm_depth", cfg.LMDepth, lm.NLayer}, {"lm_heads", cfg.LMHeads, lm.NHead},
		{"lm_ff", cfg.LMFF, lm.NFF}, {"vit_width", cfg.ViTWidth, clip.NEmbd}, {"vit_depth", cfg.ViTDepth, clip.NLayer},
		{"vit_heads", cfg.ViTHeads, clip.NHead}, {"vit_ff", cfg.ViTFF, clip.NFF}, {"patch", cfg.Patch, clip.PatchSize},
	} {
		if c.got != c.want {
			return fmt.Errorf("%s: trained with %s=%d, the testbed spec has %d", *in, c.name, c.got, c.want)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	lw, err := testmodel.NewLMWriterWeights(lm, ws)
	if err != nil {
		return err
	}
	if err := lw.WriteFile(filepath.Join(*out, "lm.gguf")); err != nil {
		return err
	}
	cw, err := testmodel.NewMMProjWriterWeights(clip, ws)
	if err != nil {
		return err
	}
	if err := cw.WriteFile(filepath.Join(*out, "mmproj.gguf")); err != nil {
		return err
	}
	slog.Info("exported", "dir", *out, "tensors", len(ws))
	return nil
}

type trainConfig struct {
	Patch    int `json:"patch"`
	ViTWidth int `json:"vit_width"`
	ViTHeads int `json:"vit_heads"`
	ViTFF    int `json:"vit_ff"`
	ViTDepth int `json:"vit_depth"`
	LMWidth  int `json:"lm_width"`
	LMHeads  int `json:"lm_heads"`
	LMFF     int `json:"lm_ff"`
	LMDepth  int `json:"lm_depth"`
}

// readWeights reads train.py's format: u64 header length, a JSON header
// {"tensors": {name: [shape, offset]}, "config": {...}}, then float32 data.
// PyTorch shapes are [out, in] row-major: the same bytes as GGUF's ne
// reversed, so values are taken as they are.
func readWeights(path string) (testmodel.Weights, trainConfig, error) {
	var cfg trainConfig
	f, err := os.Open(path)
	if err != nil {
		return nil, cfg, err
	}
	defer f.Close()
	var hl uint64
	if err := binary.Read(f, binary.LittleEndian, &hl); err != nil {
		return nil, cfg, fmt.Errorf("%s: header length: %w", path, err)
	}
	if hl > 1<<24 {
		return nil, cfg, fmt.Errorf("%s: header length %d is implausible", path, hl)
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, cfg, fmt.Errorf("%s: header: %w", path, err)
	}
	var hdr struct {
		Tensors map[string][2]json.RawMessage `json:"tensors"`
		Config  trainConfig                   `json:"config"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, cfg, fmt.Errorf("%s: header: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, cfg, err
	}
	ws := testmodel.Weights{}
	for name, t := range hdr.Tensors {
		var shape []int
		var off int
		if json.Unmarshal(t[0], &shape) != nil || json.Unmarshal(t[1], &off) != nil {
			return nil, cfg, fmt.Errorf("%s: tensor %s: bad header entry", path, name)
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if off < 0 || off+4*n > len(data) {
			return nil, cfg, fmt.Errorf("%s: tensor %s: data out of range", path, name)
		}
		v := make([]float32, n)
		if _, err := binary.Decode(data[off:off+4*n], binary.LittleEndian, v); err != nil {
			return nil, cfg, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		ws[name] = v
	}
	if len(ws) == 0 {
		return nil, cfg, errors.New(path + ": no tensors")
	}
	return ws, hdr.Config, nil
}

// modelFlags declares the flags naming the model pair and the scene seed.
func modelFlags(name string) (*flag.FlagSet, *tbeval.Config) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	o := tbeval.DefaultConfig()
	fs.StringVar(&o.LM, "lm", o.LM, "language model GGUF")
	fs.StringVar(&o.MMProj, "mmproj", o.MMProj, "mmproj GGUF")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "held-out scene seed (training used another)")
	return fs, &o
}

func eval(ctx context.Context, args []string) error {
	fs, o := modelFlags("eval")
	fs.IntVar(&o.Scenes, "scenes", o.Scenes, "held-out scenes")
	fs.IntVar(&o.Threads, "t", o.Threads, "threads")
	quick := fs.Bool("quick", false, "only none, hiprune and uniform at 1/9 of the grid")
	out := fs.String("out", "eval/results/testbed.json", "JSON results")
	masks := fs.String("masks", "eval/results/masks", "folder for mask PNGs (\"\" for none)")
	fs.Parse(args)
	o.Quick = *quick
	o.MaskDir = *masks
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := tbeval.Run(ctx, *o)
	if err != nil {
		return err
	}
	rep.WriteTable(os.Stdout)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func answers(ctx context.Context, args []string) error {
	fs, o := modelFlags("answers")
	n := fs.Int("n", 10, "scenes")
	fs.Parse(args)
	as, err := tbeval.Answers(ctx, *o, *n)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, a := range as {
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	return nil
}

func scene(args []string) error {
	fs := flag.NewFlagSet("scene", flag.ExitOnError)
	seed := fs.Uint64("seed", tbeval.HeldOutSeed, "scene seed")
	index := fs.Int("index", 0, "scene index")
	out := fs.String("out", "scene.png", "PNG to write")
	fs.Parse(args)
	sc := testbed.GenScene(*seed, *index)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, sc.Img); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, q := range testbed.Questions(sc, *seed, *index) {
		fmt.Printf("%s\t%s\t%s\n", q.Template, q.Question, q.Answer)
	}
	return nil
}
