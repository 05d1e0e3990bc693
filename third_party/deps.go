//go:build tools

// Package thirdparty pins Go modules the build needs for something other
// than Go code: github.com/gen2brain/malgo ships miniaudio.h, which
// llama.cpp's mtmd includes and the Go module zip of ollama lacks (see
// README.md here). The build tag keeps it out of every build while
// `go mod tidy` still keeps the requirement.
package thirdparty

import _ "github.com/gen2brain/malgo"
