package llava_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log"

	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// exampleModels generates the tiny test pair (random weights, LLaVA-1.5's
// shapes in miniature) the examples load; a real program passes the paths
// of downloaded GGUF files.
func exampleModels() (lm, mmproj string) {
	l, c, err := testmodel.PresetPair("tiny")
	if err != nil {
		log.Fatal(err)
	}
	lm, mmproj, err = testmodel.Ensure(fixture.Dir(), "tiny", l, c)
	if err != nil {
		log.Fatal(err)
	}
	return lm, mmproj
}

// examplePNG is a picture as a client would send it.
func examplePNG() []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testmodel.SampleImage(640, 480, 1)); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

// Open a model pair, start a conversation and ask about an image, keeping
// 64 of its 576 tokens.
func Example() {
	lmPath, mmprojPath := exampleModels()
	ctx := context.Background()
	p, err := llava.Open(ctx, llava.Config{Model: lmPath, MMProj: mmprojPath})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 2048})
	if err != nil {
		log.Fatal(err)
	}
	img, err := llava.DecodeImage("photo.png", bytes.NewReader(examplePNG()), imageprep.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	gen := llava.DefaultGen()
	gen.MaxTokens = 16
	var streamed bytes.Buffer
	answer, st, err := s.Ask(ctx, llava.Turn{
		Text:    "What is in the picture?",
		Images:  []*llava.Image{img},
		Prune:   llava.Options{Keep: 64},
		Gen:     gen,
		OnToken: func(piece string) error { streamed.WriteString(piece); return nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	is := st.Images[0]
	fmt.Printf("%s: %d of %d image tokens kept\n", is.Name, is.TokensAfter, is.TokensBefore)
	fmt.Println("streamed the answer:", streamed.String() == answer)
	// Output:
	// photo.png: 64 of 576 image tokens kept
	// streamed the answer: true
}

// A client resends the whole conversation with each request; Sync keeps
// what the session already holds of it, so the second turn neither encodes
// the image again nor evaluates it again.
func ExampleSession_Sync() {
	lmPath, mmprojPath := exampleModels()
	ctx := context.Background()
	p, err := llava.Open(ctx, llava.Config{Model: lmPath, MMProj: mmprojPath, ImageCacheBytes: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	s, err := p.NewSession(llava.SessionConfig{NCtx: 2048})
	if err != nil {
		log.Fatal(err)
	}
	o := llava.Options{Keep: 64}
	gen := llava.GenOptions{MaxTokens: 8} // greedy
	// Each request decodes its image afresh, as a server does.
	decode := func() *llava.Image {
		img, err := llava.DecodeImage("photo.png", bytes.NewReader(examplePNG()), imageprep.Limits{})
		if err != nil {
			log.Fatal(err)
		}
		return img
	}
	question := llava.Message{Role: llava.RoleUser, Text: "What is in the picture?", Images: []*llava.Image{decode()}}

	// Request 1: no earlier messages.
	if _, err := s.Sync(ctx, nil, o); err != nil {
		log.Fatal(err)
	}
	answer, _, err := s.Ask(ctx, llava.Turn{Text: question.Text, Images: question.Images, Prune: o, Gen: gen})
	if err != nil {
		log.Fatal(err)
	}

	// Request 2: the conversation so far, then a new question.
	question.Images = []*llava.Image{decode()}
	st, err := s.Sync(ctx, []llava.Message{question, {Role: llava.RoleAssistant, Text: answer}}, o)
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := s.Ask(ctx, llava.Turn{Text: "And the colours?", Prune: o, Gen: gen}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("image reused:", st.Images[0].Reused, "- image tokens evaluated again:", st.ImageTokens)
	fmt.Println("encoder runs:", p.CacheStats().Encodes)
	// Output:
	// image reused: true - image tokens evaluated again: 0
	// encoder runs: 1
}
