package testbed

import (
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testSeed = 20240611

// genAll generates scenes [0, n) for seed in parallel. With keepImg false
// the images are dropped (only Objects and Plain are kept) to save memory.
func genAll(t testing.TB, seed uint64, n int, keepImg bool) []Scene {
	t.Helper()
	scenes := make([]Scene, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				scenes[i] = GenScene(seed, i)
				if !keepImg {
					scenes[i].Img = nil
				}
			}
		}(w)
	}
	wg.Wait()
	return scenes
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDeterminism(t *testing.T) {
	for _, idx := range []int{0, 1, 7, 123, 9999} {
		a := GenScene(testSeed, idx)
		// Interleave another call so a hidden shared state would show up.
		_ = GenScene(testSeed, idx+1)
		b := GenScene(testSeed, idx)
		require.Equal(t, a.Img.Pix, b.Img.Pix, "pixels differ for index %d", idx)
		require.Equal(t, a.Objects, b.Objects)
		require.Equal(t, a.Plain, b.Plain)
		require.Equal(t, Questions(a, testSeed, idx), Questions(b, testSeed, idx))
	}
	// Different indices and seeds give different scenes.
	assert.NotEqual(t, GenScene(testSeed, 0).Img.Pix, GenScene(testSeed, 1).Img.Pix)
	assert.NotEqual(t, GenScene(testSeed, 0).Img.Pix, GenScene(testSeed+1, 0).Img.Pix)
}

// Questions draws from its own stream: it depends only on the objects and
// (seed, index), not on how the image was made.
func TestQuestionsIndependentOfImage(t *testing.T) {
	s := GenScene(testSeed, 42)
	q1 := Questions(s, testSeed, 42)
	s2 := Scene{Objects: append([]Object(nil), s.Objects...)}
	assert.Equal(t, q1, Questions(s2, testSeed, 42))
}

func TestSceneGeometry(t *testing.T) {
	scenes := genAll(t, testSeed, 300, true)
	for idx, s := range scenes {
		require.NotNil(t, s.Img)
		require.Equal(t, ImageSize, s.Img.Bounds().Dx())
		require.Equal(t, ImageSize, s.Img.Bounds().Dy())
		require.GreaterOrEqual(t, len(s.Objects), 1)
		require.LessOrEqual(t, len(s.Objects), 4)
		for i, o := range s.Objects {
			require.True(t, contains(Shapes, o.Shape), "shape %q", o.Shape)
			require.True(t, contains(Colors, o.Color), "color %q", o.Color)
			require.GreaterOrEqual(t, o.Size, 24)
			require.LessOrEqual(t, o.Size, 120)
			half := float64(o.Size) / 2
			require.GreaterOrEqual(t, o.CX-half, 0.0, "scene %d obj %d outside", idx, i)
			require.GreaterOrEqual(t, o.CY-half, 0.0, "scene %d obj %d outside", idx, i)
			require.LessOrEqual(t, o.CX+half, float64(ImageSize), "scene %d obj %d outside", idx, i)
			require.LessOrEqual(t, o.CY+half, float64(ImageSize), "scene %d obj %d outside", idx, i)

			// The fill colour is within +-20 of the nominal colour.
			nom := baseRGB[indexOf(Colors, o.Color)]
			for c := 0; c < 3; c++ {
				d := int(o.RGB[c]) - nom[c]
				require.True(t, d >= -20 && d <= 20, "scene %d obj %d channel %d jitter %d", idx, i, c, d)
			}

			// Filled: the centre pixel has exactly the object's colour.
			x, y := int(o.CX), int(o.CY)
			off := s.Img.PixOffset(x, y)
			got := [3]uint8{s.Img.Pix[off], s.Img.Pix[off+1], s.Img.Pix[off+2]}
			require.Equal(t, o.RGB, got, "scene %d obj %d (%s) centre", idx, i, o.Shape)
			if o.Shape != "star" {
				// A small block around the centre is solid too.
				for dy := -3; dy <= 3; dy++ {
					for dx := -3; dx <= 3; dx++ {
						off := s.Img.PixOffset(x+dx, y+dy)
						got := [3]uint8{s.Img.Pix[off], s.Img.Pix[off+1], s.Img.Pix[off+2]}
						if got != o.RGB {
							t.Fatalf("scene %d obj %d (%s) near centre: %v, want %v", idx, i, o.Shape, got, o.RGB)
						}
					}
				}
			}

			// Bounding boxes are separated by at least 4 px.
			for j := i + 1; j < len(s.Objects); j++ {
				p := s.Objects[j]
				gapX := max(p.CX-float64(p.Size)/2-(o.CX+half), o.CX-half-(p.CX+float64(p.Size)/2))
				gapY := max(p.CY-float64(p.Size)/2-(o.CY+half), o.CY-half-(p.CY+float64(p.Size)/2))
				require.True(t, gapX >= 4 || gapY >= 4, "scene %d objects %d and %d overlap", idx, i, j)
			}
		}

		// Background (outside every bounding box) is unsaturated: clutter
		// and texture never look like a shape colour.
		for y := 0; y < ImageSize; y += 3 {
			for x := 0; x < ImageSize; x += 3 {
				if insideAny(s.Objects, x, y) {
					continue
				}
				off := s.Img.PixOffset(x, y)
				p := s.Img.Pix[off : off+3]
				if spread := int(max(p[0], p[1], p[2])) - int(min(p[0], p[1], p[2])); spread > 60 {
					t.Fatalf("scene %d background pixel (%d,%d) too saturated: %v", idx, x, y, p)
				}
			}
		}
		if s.Plain {
			// Plain backgrounds are uniform.
			var c []uint8
			for y := 0; y < ImageSize; y += 7 {
				for x := 0; x < ImageSize; x += 7 {
					if insideAny(s.Objects, x, y) {
						continue
					}
					off := s.Img.PixOffset(x, y)
					if c == nil {
						c = s.Img.Pix[off : off+3]
					}
					if q := s.Img.Pix[off : off+3]; q[0] != c[0] || q[1] != c[1] || q[2] != c[2] {
						t.Fatalf("scene %d plain background not uniform: %v vs %v at (%d,%d)", idx, q, c, x, y)
					}
				}
			}
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func insideAny(objs []Object, x, y int) bool {
	fx, fy := float64(x)+0.5, float64(y)+0.5
	for _, o := range objs {
		h := float64(o.Size) / 2
		if fx >= o.CX-h && fx < o.CX+h && fy >= o.CY-h && fy < o.CY+h {
			return true
		}
	}
	return false
}

// negKind classifies a "no" exists question independently of the generator.
func negKind(objs []Object, color, shape string) string {
	hasColor, hasShape := false, false
	for _, o := range objs {
		hasColor = hasColor || o.Color == color
		hasShape = hasShape || o.Shape == shape
	}
	switch {
	case !hasColor:
		return "absent_color"
	case !hasShape:
		return "absent_shape"
	default:
		return "wrong_color"
	}
}

// checkAnswer recomputes the answer of q from the object list.
func checkAnswer(t *testing.T, idx int, objs []Object, q QA) {
	t.Helper()
	switch q.Template {
	case "color":
		var sh string
		_, err := sscanTemplate(q.Question, "What color is the ", "?", &sh)
		require.NoError(t, err, q.Question)
		var found []Object
		for _, o := range objs {
			if o.Shape == sh {
				found = append(found, o)
			}
		}
		require.Len(t, found, 1, "scene %d: %q must be about a unique shape", idx, q.Question)
		assert.Equal(t, found[0].Color, q.Answer, "scene %d: %q", idx, q.Question)
	case "shape":
		var c string
		_, err := sscanTemplate(q.Question, "What shape is ", "?", &c)
		require.NoError(t, err, q.Question)
		var found []Object
		for _, o := range objs {
			if o.Color == c {
				found = append(found, o)
			}
		}
		require.Len(t, found, 1, "scene %d: %q must be about a unique colour", idx, q.Question)
		assert.Equal(t, found[0].Shape, q.Answer, "scene %d: %q", idx, q.Question)
	case "exists":
		c, sh := parseExists(t, q.Question)
		want := "no"
		for _, o := range objs {
			if o.Color == c && o.Shape == sh {
				want = "yes"
			}
		}
		assert.Equal(t, want, q.Answer, "scene %d: %q", idx, q.Question)
	case "count":
		assert.Equal(t, "How many shapes are there?", q.Question)
		assert.Equal(t, strconv.Itoa(len(objs)), q.Answer, "scene %d", idx)
	case "left":
		a, b := parseLeft(t, q.Question)
		require.NotEqual(t, a, b)
		var oa, ob []Object
		for _, o := range objs {
			if o.Shape == a {
				oa = append(oa, o)
			}
			if o.Shape == b {
				ob = append(ob, o)
			}
		}
		require.Len(t, oa, 1, "scene %d: %q", idx, q.Question)
		require.Len(t, ob, 1, "scene %d: %q", idx, q.Question)
		d := oa[0].CX - ob[0].CX
		require.True(t, d >= 16 || d <= -16, "scene %d: %q ambiguous (dx=%v)", idx, q.Question, d)
		want := "no"
		if d < 0 {
			want = "yes"
		}
		assert.Equal(t, want, q.Answer, "scene %d: %q", idx, q.Question)
	default:
		t.Fatalf("unknown template %q", q.Template)
	}
}

// sscanTemplate extracts the single word between prefix and suffix.
func sscanTemplate(q, prefix, suffix string, word *string) (int, error) {
	if len(q) <= len(prefix)+len(suffix) || q[:len(prefix)] != prefix || q[len(q)-len(suffix):] != suffix {
		return 0, errBadQuestion(q)
	}
	*word = q[len(prefix) : len(q)-len(suffix)]
	return 1, nil
}

type errBadQuestion string

func (e errBadQuestion) Error() string { return "bad question: " + string(e) }

func parseExists(t *testing.T, q string) (color, shape string) {
	t.Helper()
	var mid string
	_, err := sscanTemplate(q, "Is there a ", "?", &mid)
	require.NoError(t, err)
	for _, c := range Colors {
		for _, sh := range Shapes {
			if mid == c+" "+sh {
				return c, sh
			}
		}
	}
	t.Fatalf("bad exists question %q", q)
	return "", ""
}

func parseLeft(t *testing.T, q string) (a, b string) {
	t.Helper()
	for _, x := range Shapes {
		for _, y := range Shapes {
			if q == "Is the "+x+" left of the "+y+"?" {
				return x, y
			}
		}
	}
	t.Fatalf("bad left question %q", q)
	return "", ""
}

// layoutAll returns scenes [0, n) without images: layout is exactly what
// GenScene uses for Plain and Objects (TestLayoutMatchesGenScene checks this),
// so statistics over many scenes stay fast.
func layoutAll(seed uint64, n int) []Scene {
	scenes := make([]Scene, n)
	for i := range scenes {
		plain, objs := layout(seed, i)
		scenes[i] = Scene{Objects: objs, Plain: plain}
	}
	return scenes
}

func TestLayoutMatchesGenScene(t *testing.T) {
	full := genAll(t, testSeed+7, 200, false)
	lay := layoutAll(testSeed+7, 200)
	require.Equal(t, lay, full)
}

func TestQuestionsAndDistribution(t *testing.T) {
	const n = 2000
	scenes := layoutAll(testSeed, n)

	plain := 0
	counts := map[int]int{}
	templates := map[string]int{}
	existsYes, existsTotal := 0, 0
	leftYes, leftTotal := 0, 0
	negKinds := map[string]int{}
	answers := map[string]map[string]int{}

	for idx, s := range scenes {
		if s.Plain {
			plain++
		}
		counts[len(s.Objects)]++
		qs := Questions(s, testSeed, idx)
		seen := map[string]bool{}
		for i, q := range qs {
			require.True(t, contains(Templates, q.Template), q.Template)
			require.False(t, seen[q.Template], "scene %d: template %s twice", idx, q.Template)
			seen[q.Template] = true
			if i > 0 {
				require.Less(t, indexOf(Templates, qs[i-1].Template), indexOf(Templates, q.Template), "templates out of order")
			}
			require.NotEmpty(t, q.Answer)
			require.Equal(t, FirstWord(q.Answer), q.Answer, "answer must be one lowercase word")
			checkAnswer(t, idx, s.Objects, q)
			templates[q.Template]++
			if answers[q.Template] == nil {
				answers[q.Template] = map[string]int{}
			}
			answers[q.Template][q.Answer]++
			switch q.Template {
			case "exists":
				existsTotal++
				if q.Answer == "yes" {
					existsYes++
				} else {
					c, sh := parseExists(t, q.Question)
					negKinds[negKind(s.Objects, c, sh)]++
				}
			case "left":
				leftTotal++
				if q.Answer == "yes" {
					leftYes++
				}
			}
		}
		require.True(t, seen["exists"], "scene %d has no exists question", idx)
		require.True(t, seen["count"], "scene %d has no count question", idx)
	}

	pf := float64(plain) / n
	assert.True(t, pf >= 0.25 && pf <= 0.35, "plain fraction %.3f", pf)
	for c := 1; c <= 4; c++ {
		f := float64(counts[c]) / n
		assert.True(t, f >= 0.15 && f <= 0.35, "count %d fraction %.3f", c, f)
	}
	assert.Len(t, counts, 4, "counts outside 1..4: %v", counts)
	assert.Equal(t, n, existsTotal)
	ey := float64(existsYes) / float64(existsTotal)
	assert.True(t, ey >= 0.45 && ey <= 0.55, "exists yes fraction %.3f", ey)
	for _, k := range []string{"absent_color", "absent_shape", "wrong_color"} {
		assert.Greater(t, negKinds[k], 0, "negative kind %s never appears (%v)", k, negKinds)
	}
	require.Greater(t, leftTotal, 100)
	ly := float64(leftYes) / float64(leftTotal)
	assert.True(t, ly >= 0.4 && ly <= 0.6, "left yes fraction %.3f", ly)
	for _, tpl := range Templates {
		assert.Greater(t, templates[tpl], 0, "template %s never appears", tpl)
	}
	// Every colour and shape shows up as an answer.
	for _, c := range Colors {
		assert.Greater(t, answers["color"][c], 0, "colour %s never an answer", c)
	}
	for _, sh := range Shapes {
		assert.Greater(t, answers["shape"][sh], 0, "shape %s never an answer", sh)
	}
	t.Logf("plain=%.3f counts=%v templates=%v existsYes=%.3f neg=%v leftYes=%.3f (n=%d)",
		pf, counts, templates, ey, negKinds, ly, leftTotal)
}

func TestFirstWordAndScore(t *testing.T) {
	cases := map[string]string{
		"Red.":             "red",
		"  yes, it is":     "yes",
		"":                 "",
		"4":                "4",
		"   ":              "",
		"No":               "no",
		"Circle!\nThe end": "circle",
		"- green":          "green",
		"**Yes**":          "yes",
		"\"blue\"":         "blue",
		"...":              "",
	}
	for in, want := range cases {
		assert.Equal(t, want, FirstWord(in), "FirstWord(%q)", in)
	}
	assert.True(t, Score("Red.", "red"))
	assert.True(t, Score("  yes, it is", "yes"))
	assert.True(t, Score("4", "4"))
	assert.True(t, Score("4 shapes.", "4"))
	assert.False(t, Score("", "yes"))
	assert.False(t, Score("The answer is red", "red"))
	assert.False(t, Score("no", "yes"))
	assert.False(t, Score("four", "4"))
}

func BenchmarkGenScene(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		GenScene(testSeed, i)
	}
}

func TestAllQuestionsCoverGenerator(t *testing.T) {
	qs := map[string]bool{}
	for _, q := range AllQuestions() {
		require.False(t, qs[q], "repeated question %q", q)
		qs[q] = true
	}
	as := map[string]bool{}
	for _, a := range AllAnswers() {
		as[a] = true
	}
	for i := 0; i < 500; i++ {
		for _, qa := range Questions(GenScene(testSeed+7, i), testSeed+7, i) {
			require.True(t, qs[qa.Question], "question %q missing from AllQuestions", qa.Question)
			require.True(t, as[qa.Answer], "answer %q missing from AllAnswers", qa.Answer)
		}
	}
}
