// Package llava runs LLaVA-style vision-language models with llama.cpp and
// prunes their image tokens with HiPrune before the language model sees
// them: image in, preprocess, encode with hiprune-go's instrumented vision
// encoder, keep N' of the image's tokens, evaluate the kept embeddings and
// the text into a llama.cpp context, generate. Pruned families: LLaVA-1.5
// and NeXT, Qwen2.5-VL, Gemma 3; llama.cpp's other vision families run
// unpruned through its mtmd (Pipeline.Projector says which).
//
// # Objects
//
// A Pipeline is a loaded model pair: the language model (-m) and its vision
// projector (--mmproj). Open it once; it holds the weights every session
// shares, the vision encoder and the image cache (Config.ImageCacheBytes).
// A Session is one conversation: a llama.cpp context whose KV cache holds
// every earlier turn. An Image is a decoded picture (DecodeImage,
// LoadImage). A Turn is a user message with its images, pruning Options and
// GenOptions; Session.Prefill evaluates it and returns a Reply, whose
// Generate writes the answer. Session.Ask does both.
//
// The zero value of every options struct is the default: Options{} is
// HiPrune keeping a third of the tokens (1/9 for LLaVA-NeXT, 0.334 for
// Qwen2.5-VL, 85 of Gemma 3's 256), alpha 0.1, object layer 9 (16 for
// Qwen2.5-VL, 13 for Gemma 3's SigLIP);
// SessionConfig{} is a 4,096-token context with the
// model's chat template; DefaultGen gives llama.cpp's sampling defaults. Validate reports what is
// out of range, naming the option.
//
// # Conversations resent whole
//
// OpenAI-style clients resend the whole conversation, images included, with
// each request. Session.Sync brings a session to such a conversation,
// keeping the longest prefix its context already holds (llama-server's
// prompt cache) and evaluating the rest; the image cache gives back the
// pruned rows of an image sent before with the same options, so the vision
// encoder runs once per image. Stats and ImageStats say what was reused.
//
// # Concurrency
//
//   - A Pipeline is safe for concurrent use: sessions in different
//     goroutines share it. Config.Parallel bounds how many encodes and LM
//     evaluations run at once (default 1: each already uses every thread).
//   - A Session serialises its methods (a second call waits for the first),
//     but a conversation is a sequence: drive each session from one
//     goroutine, and give each concurrent conversation its own session.
//   - A Reply generates once, and only while nothing else has gone into its
//     session since its Prefill.
//   - An Image must not change once given to a session. A Pruned image
//     (PrepareImage, Prune) may be used by several sessions at once until
//     it is released.
//   - Pipeline.Close closes the pipeline's sessions, waiting for calls in
//     progress; afterwards every method of the pipeline and its sessions
//     returns ErrClosed. Session.Close frees one session early. Both are
//     safe to call twice.
//
// # Errors
//
// ErrOptions marks invalid options or input the caller can fix (it wraps a
// message naming the option and the value); ErrContextFull, a message or
// answer that does not fit the session's context; ErrNoVision, an image
// given to a pipeline without a projector; ErrNoPruning, pruning asked of
// a projector family whose encoder gives no attention scores (those run
// unpruned, through llama.cpp's mtmd); ErrMismatch, a projector that does
// not fit the language model; ErrClosed, a closed pipeline or session.
// Image decoding errors come from package imageprep (ErrTooLarge,
// ErrFormat). Test them with errors.Is.
package llava
