package testbed

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
)

// QA is one question about a scene with its one-word lowercase answer.
type QA struct {
	Template string // one of Templates
	Question string
	Answer   string
}

// Negative kinds of the "exists" question, as in the POPE benchmark.
const (
	negAbsentColor = "absent_color" // colour on no object; shape is present
	negAbsentShape = "absent_shape" // shape on no object; colour is present
	negWrongColor  = "wrong_color"  // shape and colour both present, never together
)

type pair struct{ color, shape string }

// Questions returns up to one question per template for the scene (every
// template that is applicable), in Templates order, deterministic in
// (seed, index). The "exists" question is always present; its answer is yes
// or no with probability 1/2 each, and a no picks uniformly among the
// negative kinds (absent colour, absent shape, present shape with a wrong
// colour) that the scene allows.
func Questions(s Scene, seed uint64, index int) []QA {
	r := newRand(seed, index, streamQuestion)
	objs := s.Objects

	shapeCount := map[string]int{}
	colorCount := map[string]int{}
	combo := map[pair]bool{}
	for _, o := range objs {
		shapeCount[o.Shape]++
		colorCount[o.Color]++
		combo[pair{o.Color, o.Shape}] = true
	}

	var out []QA

	// color: a shape kind present exactly once.
	var uniqShapes []string
	for _, sh := range Shapes {
		if shapeCount[sh] == 1 {
			uniqShapes = append(uniqShapes, sh)
		}
	}
	if len(uniqShapes) > 0 {
		sh := uniqShapes[r.IntN(len(uniqShapes))]
		for _, o := range objs {
			if o.Shape == sh {
				out = append(out, QA{"color", "What color is the " + sh + "?", o.Color})
			}
		}
	}

	// shape: a colour carried by exactly one object.
	var uniqColors []string
	for _, c := range Colors {
		if colorCount[c] == 1 {
			uniqColors = append(uniqColors, c)
		}
	}
	if len(uniqColors) > 0 {
		c := uniqColors[r.IntN(len(uniqColors))]
		for _, o := range objs {
			if o.Color == c {
				out = append(out, QA{"shape", "What shape is " + c + "?", o.Shape})
			}
		}
	}

	// exists: always asked, yes/no balanced.
	if p, yes := existsPair(r, objs, shapeCount, colorCount, combo); yes {
		out = append(out, QA{"exists", "Is there a " + p.color + " " + p.shape + "?", "yes"})
	} else {
		out = append(out, QA{"exists", "Is there a " + p.color + " " + p.shape + "?", "no"})
	}

	// count.
	out = append(out, QA{"count", "How many shapes are there?", strconv.Itoa(len(objs))})

	// left: two different, unique shape kinds whose centres are >= 16 px
	// apart horizontally; the order is random so yes/no is balanced.
	type lr struct{ a, b Object }
	var pairs []lr
	for i, a := range objs {
		if shapeCount[a.Shape] != 1 {
			continue
		}
		for _, b := range objs[i+1:] {
			if shapeCount[b.Shape] != 1 || a.Shape == b.Shape {
				continue
			}
			if d := a.CX - b.CX; d >= 16 || d <= -16 {
				pairs = append(pairs, lr{a, b})
			}
		}
	}
	if len(pairs) > 0 {
		p := pairs[r.IntN(len(pairs))]
		a, b := p.a, p.b
		if r.IntN(2) == 1 {
			a, b = b, a
		}
		ans := "no"
		if a.CX < b.CX {
			ans = "yes"
		}
		out = append(out, QA{"left", "Is the " + a.Shape + " left of the " + b.Shape + "?", ans})
	}
	return out
}

// existsPair picks the (colour, shape) of the "exists" question and reports
// whether the answer is yes.
func existsPair(r *rand.Rand, objs []Object, shapeCount, colorCount map[string]int, combo map[pair]bool) (pair, bool) {
	yes := r.IntN(2) == 0
	if yes && len(objs) > 0 {
		o := objs[r.IntN(len(objs))]
		return pair{o.Color, o.Shape}, true
	}
	var presentShapes, absentShapes, presentColors, absentColors []string
	for _, sh := range Shapes {
		if shapeCount[sh] > 0 {
			presentShapes = append(presentShapes, sh)
		} else {
			absentShapes = append(absentShapes, sh)
		}
	}
	for _, c := range Colors {
		if colorCount[c] > 0 {
			presentColors = append(presentColors, c)
		} else {
			absentColors = append(absentColors, c)
		}
	}
	cands := map[string][]pair{}
	for _, sh := range presentShapes {
		for _, c := range absentColors {
			cands[negAbsentColor] = append(cands[negAbsentColor], pair{c, sh})
		}
		for _, c := range presentColors {
			if !combo[pair{c, sh}] {
				cands[negWrongColor] = append(cands[negWrongColor], pair{c, sh})
			}
		}
	}
	for _, sh := range absentShapes {
		for _, c := range presentColors {
			cands[negAbsentShape] = append(cands[negAbsentShape], pair{c, sh})
		}
	}
	var kinds []string
	for _, k := range []string{negAbsentColor, negAbsentShape, negWrongColor} {
		if len(cands[k]) > 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 { // empty scene: any pair is a no
		return pair{Colors[r.IntN(len(Colors))], Shapes[r.IntN(len(Shapes))]}, false
	}
	list := cands[kinds[r.IntN(len(kinds))]]
	return list[r.IntN(len(list))], false
}

// FirstWord returns the first word of generated text, lowercased, with every
// character that is not a letter or digit removed ("" if none). Leading
// tokens that are pure punctuation (e.g. "-", "**") are skipped.
func FirstWord(generated string) string {
	for _, tok := range strings.Fields(generated) {
		w := strings.Map(func(c rune) rune {
			if unicode.IsLetter(c) || unicode.IsDigit(c) {
				return unicode.ToLower(c)
			}
			return -1
		}, tok)
		if w != "" {
			return w
		}
	}
	return ""
}

// Score reports whether the first word of generated text, lowercased and
// with punctuation stripped, equals answer.
func Score(generated, answer string) bool {
	return FirstWord(generated) == strings.ToLower(strings.TrimSpace(answer))
}
