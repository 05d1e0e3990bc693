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

	// color: a shape kind present exactly once; shape: a colour carried by
	// exactly one object.
	out = uniqueQuestion(r, out, objs, Shapes, shapeCount, func(o Object) string { return o.Shape },
		func(sh string, o Object) QA { return QA{"color", "What color is the " + sh + "?", o.Color} })
	out = uniqueQuestion(r, out, objs, Colors, colorCount, func(o Object) string { return o.Color },
		func(c string, o Object) QA { return QA{"shape", "What shape is " + c + "?", o.Shape} })

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

// uniqueQuestion appends a question about one value of kinds (picked at
// random among those exactly one object has), made by ask from that object.
func uniqueQuestion(r *rand.Rand, out []QA, objs []Object, kinds []string, count map[string]int,
	key func(Object) string, ask func(string, Object) QA) []QA {
	var uniq []string
	for _, k := range kinds {
		if count[k] == 1 {
			uniq = append(uniq, k)
		}
	}
	if len(uniq) == 0 {
		return out
	}
	k := uniq[r.IntN(len(uniq))]
	for _, o := range objs {
		if key(o) == k {
			out = append(out, ask(k, o))
		}
	}
	return out
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
