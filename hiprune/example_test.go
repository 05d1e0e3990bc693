package hiprune_test

import (
	"fmt"

	"github.com/hiprune/hiprune-go/hiprune"
)

// A 4x4 patch grid:
//
//	 0  1  2  3
//	 4  5  6  7
//	 8  9 10 11
//	12 13 14 15
func ExampleSelect() {
	// The object layer attends most to patch 5; the deep layer to 15 and 12.
	object := make([]float32, 16)
	object[5] = 0.9
	deep := make([]float32, 16)
	deep[15], deep[12] = 0.8, 0.7

	// Budget 7 with alpha 1: round(7*1/5) = 1 anchor (5), its four
	// neighbours as buffers (1, 4, 6, 9), and 2 registers (12, 15).
	keep, err := hiprune.Select(object, deep, 4, 4, hiprune.Config{Budget: 7, Alpha: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(keep)
	// Output: [1 4 5 6 9 12 15]
}

func ExampleSelectDetailed() {
	object := make([]float32, 16)
	object[5], object[6] = 0.9, 0.8 // two adjacent anchors
	deep := make([]float32, 16)
	deep[0] = 1

	sel, err := hiprune.SelectDetailed(object, deep, 4, 4, hiprune.Config{Budget: 10, Alpha: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("anchors:  ", sel.Anchors)
	fmt.Println("buffers:  ", sel.Buffers)
	fmt.Println("registers:", sel.Registers)
	fmt.Println("kept:     ", sel.Indices)
	// Output:
	// anchors:   [5 6]
	// buffers:   [1 2 4 7 9 10]
	// registers: [0 3]
	// kept:      [0 1 2 3 4 5 6 7 9 10]
}

func ExampleScores() {
	// One head over a CLS token and 2 patches; every query row sums to 1.
	attn := []float32{
		0.2, 0.5, 0.3,
		0.1, 0.8, 0.1,
		0.3, 0.3, 0.4,
	}
	s, err := hiprune.Scores(attn, 1, 3, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.4f\n", s)
	// Output: [0.5333 0.2667]
}
