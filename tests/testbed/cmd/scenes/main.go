// Command scenes writes testbed scenes as PNG files plus a questions.jsonl
// (one line per question: image, template, question, answer) into a folder.
//
//	go run ./tests/testbed/cmd/scenes -seed 1 -start 0 -n 6 -out /tmp/scenes
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/hiprune/hiprune-go/tests/testbed"
)

type line struct {
	Image    string `json:"image"`
	Template string `json:"template"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

func main() {
	seed := flag.Uint64("seed", 1, "generator seed")
	start := flag.Int("start", 0, "first scene index")
	n := flag.Int("n", 10, "number of scenes")
	out := flag.String("out", "scenes", "output folder")
	flag.Parse()

	if err := run(*seed, *start, *n, *out); err != nil {
		log.Fatal(err)
	}
}

func run(seed uint64, start, n int, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	qf, err := os.Create(filepath.Join(out, "questions.jsonl"))
	if err != nil {
		return err
	}
	defer qf.Close()
	w := bufio.NewWriter(qf)
	enc := json.NewEncoder(w)
	for i := start; i < start+n; i++ {
		s := testbed.GenScene(seed, i)
		name := fmt.Sprintf("scene_%06d.png", i)
		if err := writePNG(filepath.Join(out, name), s); err != nil {
			return err
		}
		for _, q := range testbed.Questions(s, seed, i) {
			if err := enc.Encode(line{name, q.Template, q.Question, q.Answer}); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return qf.Close()
}

func writePNG(path string, s testbed.Scene) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, s.Img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
