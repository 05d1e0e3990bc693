// Command genmodels writes a deterministic LLaVA-1.5-format GGUF pair
// (language model + mmproj) with random weights and prints the two paths:
//
//	go run ./tests/testmodel/cmd/genmodels -preset tiny|mid|1b|7b|tiny-qwen|qwen3b|... -out DIR
//
// Files are cached: DIR/<preset>-lm.gguf and DIR/<preset>-mmproj.gguf are
// regenerated only when missing or when DIR/<preset>.spec.json differs.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hiprune/hiprune-go/tests/testmodel"
)

func main() {
	preset := flag.String("preset", "tiny", "model pair: "+strings.Join(testmodel.Presets, "|"))
	out := flag.String("out", "", "output directory (required)")
	seed := flag.Uint64("seed", 0, "if non-zero, override both specs' seeds (LM seed, mmproj seed+1)")
	image := flag.String("image", "", "if set, also write a 336x336 sample PNG to this path")
	quiet := flag.Bool("q", false, "print only the two paths")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "genmodels: -out is required")
		flag.Usage()
		os.Exit(2)
	}
	lm, clip, err := testmodel.PresetPair(*preset)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmodels:", err)
		os.Exit(2)
	}
	name := *preset
	if *seed != 0 {
		lm.Seed, clip.Seed = *seed, *seed+1
		name = fmt.Sprintf("%s-seed%d", *preset, *seed)
	}
	start := time.Now()
	lmPath, mmPath, err := testmodel.Ensure(*out, name, lm, clip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmodels:", err)
		os.Exit(1)
	}
	if *image != "" {
		if err := testmodel.WritePNG(*image, testmodel.SampleImage(336, 336, lm.Seed)); err != nil {
			fmt.Fprintln(os.Stderr, "genmodels:", err)
			os.Exit(1)
		}
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "genmodels: %s pair ready in %v (LM %.3f B params, mmproj %.1f M params)\n",
			*preset, time.Since(start).Round(time.Millisecond), float64(lm.ParamCount())/1e9, float64(clip.ParamCount())/1e6)
	}
	fmt.Println(lmPath)
	fmt.Println(mmPath)
}
