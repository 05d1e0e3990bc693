package main

import (
	"fmt"
	"strings"

	"github.com/hiprune/hiprune-go/llava"
)

// pruningFlags only mean something where the instrumented encoder runs
// the projector: on every other family (llama.cpp's mtmd, unpruned) an
// explicit one is a usage error rather than silently ignored.
var pruningFlags = []string{"prune", "keep", "keep-ratio", "alpha", "object-layer", "save-mask", "clip-layout"}

func (o *options) anyPruningFlag() bool {
	for _, f := range pruningFlags {
		if o.set[f] {
			return true
		}
	}
	return false
}

// checkUnprunable refuses pruning flags for a projector that cannot be
// pruned; --prune none asks for what such a model does and is accepted.
func (o *options) checkUnprunable(pr llava.Projector) error {
	if pr.Pruning || pr.Type == "" {
		return nil
	}
	for _, f := range pruningFlags {
		if !o.set[f] {
			continue
		}
		var v string
		switch f {
		case "prune":
			if m, err := llava.ParseMethod(o.pruneMethod); err == nil && m == llava.MethodNone {
				continue
			}
			v = o.pruneMethod
		case "keep":
			v = fmt.Sprint(o.keep)
		case "keep-ratio":
			v = fmt.Sprint(o.keepRatio)
		case "alpha":
			v = fmt.Sprint(o.alpha)
		case "object-layer":
			v = fmt.Sprint(o.objectLayer)
		case "save-mask":
			v = o.saveMask
		case "clip-layout":
			v = o.layout
		}
		return usagef("--%s %s: pruning is not available for projector type %s, which runs unpruned through llama.cpp's mtmd (projector types that can be pruned: %s)",
			f, v, pr, strings.Join(llava.PrunableProjectors(), ", "))
	}
	return nil
}
