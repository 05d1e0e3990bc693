package testbed

import "strconv"

// AllQuestions lists every question text Questions can produce (the
// training script needs each one's token ids in advance).
func AllQuestions() []string {
	var out []string
	for _, sh := range Shapes {
		out = append(out, "What color is the "+sh+"?")
	}
	for _, c := range Colors {
		out = append(out, "What shape is "+c+"?")
	}
	for _, c := range Colors {
		for _, sh := range Shapes {
			out = append(out, "Is there a "+c+" "+sh+"?")
		}
	}
	out = append(out, "How many shapes are there?")
	for _, a := range Shapes {
		for _, b := range Shapes {
			if a != b {
				out = append(out, "Is the "+a+" left of the "+b+"?")
			}
		}
	}
	return out
}

// AllAnswers lists every answer word.
func AllAnswers() []string {
	out := append(append([]string{}, Colors...), Shapes...)
	out = append(out, "yes", "no")
	for n := 1; n <= 4; n++ {
		out = append(out, strconv.Itoa(n))
	}
	return out
}
