package main

// chat serve: an OpenAI-compatible HTTP server over the same pipeline.
//
// Each request takes a free session (a slot) and brings it to the
// conversation the client sent: llava.Session.Sync keeps the KV prefix the
// slot already holds of it (as llama-server's prompt cache does) and
// evaluates the rest of the earlier messages, then Prefill evaluates the
// last user message and the answer is generated. Images come from the
// pipeline's image cache when the same bytes were sent before with the
// same pruning options, so a conversation about one image encodes it once.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hiprune/hiprune-go/cmd/chat/internal/openai"
	"github.com/hiprune/hiprune-go/internal/fsutil"
	"github.com/hiprune/hiprune-go/llava"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// serveFlags are chat serve's own flags, beside the model, context,
// thread, sampling and pruning flags it shares with chat.
type serveFlags struct {
	host            string
	port            int
	parallel, queue int
	maxImages       int
	maxBodyMiB      int
	shutdownTimeout time.Duration
	allowURLs       bool
	urlTimeout      time.Duration
	alias           string
	imageCacheMiB   int
}

func (sf *serveFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&sf.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&sf.port, "port", 8080, "port to listen on (0: any free port)")
	fs.IntVar(&sf.parallel, "parallel", 1, "sessions answering at once (each holds a -c context)")
	fs.IntVar(&sf.queue, "queue", 16, "requests that may wait for a session; beyond, 503 with Retry-After")
	fs.IntVar(&sf.maxImages, "max-images", 8, "images in one request")
	fs.IntVar(&sf.maxBodyMiB, "max-body-mib", 20, "request body limit in MiB (also the limit of a fetched image)")
	fs.DurationVar(&sf.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may finish before they are cancelled")
	fs.BoolVar(&sf.allowURLs, "allow-image-urls", false, "fetch http(s) image URLs (off: only data: URIs; the server must not reach arbitrary addresses)")
	fs.DurationVar(&sf.urlTimeout, "image-url-timeout", 10*time.Second, "time limit of an image URL fetch")
	fs.IntVar(&sf.imageCacheMiB, "image-cache-mib", 256, "memory for encoded and pruned images, reused when a conversation resends them (0: off)")
	fs.StringVar(&sf.alias, "alias", "", "model name in /v1/models and responses (default: the -m file's name)")
}

// chatOnlyFlags make no sense for a server: images and prompts come in
// requests, masks are not written.
var chatOnlyFlags = []string{"p", "prompt", "image", "save-mask"}

func printServeUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `chat serve: an OpenAI-compatible server (POST /v1/chat/completions, GET /v1/models,
GET /health) with HiPrune visual-token pruning.

Usage:
  chat serve -m MODEL.gguf --mmproj MMPROJ.gguf [--host 127.0.0.1] [--port 8080] [--keep 64]

Requests may set "hiprune": {"keep", "keep_ratio", "method", "alpha", "object_layer"};
the pruning flags below are the defaults. -n is the default max_tokens.

Flags:
`)
	shown := flag.NewFlagSet("chat serve", flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		for _, c := range chatOnlyFlags {
			if f.Name == c {
				return
			}
		}
		shown.Var(f.Value, f.Name, f.Usage)
	})
	shown.SetOutput(w)
	shown.PrintDefaults()
}

// serve runs chat serve until SIGINT or SIGTERM: exit status 0 after a
// graceful shutdown, 1 when the model cannot be loaded or the port not
// listened on, 2 for a bad command line.
func serve(ctx context.Context, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sf := &serveFlags{}
	o, err := parseCommand("chat serve", args, stderr, sf.define, printServeUsage)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "chat: %v (see chat serve --help)\n", err)
		return 2
	}
	cfg, err := newServerConfig(o, sf)
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v (see chat serve --help)\n", err)
		return 2
	}
	cfg.log = newLogger(stderr, o.verbose)
	cfg.stderr = stderr
	llava.SetVerbose(o.verbose)
	// A missing or unreadable file fails now, not after the port is taken.
	for _, f := range []struct{ what, path string }{{"model", o.model}, {"mmproj", o.mmproj}} {
		if f.path == "" {
			continue
		}
		if err := fsutil.CheckInput(f.path); err != nil {
			fmt.Fprintf(stderr, "chat: %s: %v\n", f.what, oneLine(err))
			return 1
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(sf.host, strconv.Itoa(sf.port)))
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n", oneLine(err))
		return 1
	}
	if err := runServer(ctx, cfg, ln, sf.shutdownTimeout); err != nil {
		fmt.Fprintf(stderr, "chat: %v\n", oneLine(err))
		return 1
	}
	return 0
}

// serverConfig is everything a server needs, checked.
type serverConfig struct {
	pipeline   llava.Config
	session    llava.SessionConfig
	prune      llava.Options
	gen        llava.GenOptions
	randomSeed bool // no --seed: every request without one gets its own
	model      string
	parallel   int
	queue      int
	limits     openai.Limits
	maxBody    int64
	images     imageprep.Limits
	urlTimeout time.Duration
	timings    bool
	log        *slog.Logger
	stderr     io.Writer
	// tokenHook runs before each generated piece is sent (tests hold a
	// generation in flight with it).
	tokenHook func(ctx context.Context)
}

func newServerConfig(o *options, sf *serveFlags) (serverConfig, error) {
	var c serverConfig
	for _, f := range chatOnlyFlags {
		if o.set[f] {
			return c, usagef("-%s: not a chat serve flag (prompts and images come in requests)", f)
		}
	}
	po, gen, layout, err := o.validate()
	if err != nil {
		return c, err
	}
	// Pruning flags left at their defaults stay unset, so a projector that
	// cannot be pruned runs its images unpruned rather than failing.
	if !o.set["prune"] {
		po.Method = ""
	}
	if !o.set["alpha"] {
		po.Alpha = 0
	}
	switch {
	case sf.port < 0 || sf.port > 65535:
		return c, usagef("--port %d: want 0 to 65535", sf.port)
	case sf.parallel < 1:
		return c, usagef("--parallel %d: want at least 1 session", sf.parallel)
	case sf.queue < 0:
		return c, usagef("--queue %d: want 0 or more waiting requests", sf.queue)
	case sf.maxImages < 1:
		return c, usagef("--max-images %d: want at least 1", sf.maxImages)
	case sf.maxBodyMiB < 1:
		return c, usagef("--max-body-mib %d: want at least 1", sf.maxBodyMiB)
	case sf.shutdownTimeout < 0:
		return c, usagef("--shutdown-timeout %s: want 0 or more", sf.shutdownTimeout)
	case sf.imageCacheMiB < 0:
		return c, usagef("--image-cache-mib %d: want 0 (off) or more", sf.imageCacheMiB)
	case sf.urlTimeout <= 0:
		return c, usagef("--image-url-timeout %s: want more than 0", sf.urlTimeout)
	}
	threads := o.threads
	if n := llava.MaxThreads(); threads > n {
		threads = n
	}
	name := sf.alias
	if name == "" {
		name = filepath.Base(o.model)
	}
	c = serverConfig{
		pipeline: llava.Config{Model: o.model, MMProj: o.mmproj, Threads: threads, GPULayers: o.ngl,
			EncoderGPU: o.encoderGPU, Layout: layout, ObjectLayer: po.ObjectLayer, EncoderWeights: o.encoderType,
			EncoderFlashAttn: o.encoderFlash, NoRepack: o.noRepack,
			ImageCacheBytes: int64(sf.imageCacheMiB) << 20},
		session:    llava.SessionConfig{NCtx: o.nCtx, NBatch: o.nBatch, Template: o.template},
		prune:      po,
		gen:        gen,
		randomSeed: o.seed < 0,
		model:      name,
		parallel:   sf.parallel,
		queue:      sf.queue,
		limits:     openai.Limits{MaxImages: sf.maxImages, AllowURLs: sf.allowURLs},
		maxBody:    int64(sf.maxBodyMiB) << 20,
		images:     imageprep.DefaultLimits,
		urlTimeout: sf.urlTimeout,
		timings:    o.timings,
	}
	return c, nil
}

// runServer serves on ln, loads the model in the background (GET /health
// says 503 until it is ready) and serves until ctx ends; then it stops
// accepting, lets in-flight requests finish for up to grace, cancels the
// rest, and frees the model.
func runServer(ctx context.Context, cfg serverConfig, ln net.Listener, grace time.Duration) error {
	s := newServer(cfg)
	cfg = s.cfg
	fmt.Fprintf(cfg.stderr, "chat: listening on http://%s (loading %s)\n", ln.Addr(), cfg.pipeline.Model)
	// Requests get their own base context: Shutdown does not cancel them,
	// cancelRequests does once the grace period is over.
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	hs := &http.Server{
		Handler:           s.Handler(),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	loaded := make(chan error, 1)
	go func() { loaded <- s.load(ctx) }()

	var failed error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-served:
			failed = fmt.Errorf("serve: %w", err)
			break wait
		case err := <-loaded:
			loaded = nil
			if err != nil && ctx.Err() != nil {
				break wait // a signal while loading is a shutdown, not a failure
			}
			if err != nil {
				failed = err
				break wait
			}
			fmt.Fprintf(cfg.stderr, "chat: ready: model %s, %d session(s) of %d tokens\n", cfg.model, cfg.parallel, s.nCtx)
		}
	}
	if failed == nil {
		fmt.Fprintf(cfg.stderr, "chat: shutting down (in-flight requests have %s to finish)\n", grace)
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	s.shuttingDown.Store(true)
	if err := hs.Shutdown(sctx); err != nil {
		// Past the grace period: cancel what is still generating. Each
		// stops within a token; give them a moment to say so in their
		// streams, then cut the connections left.
		cancelRequests()
		done := make(chan struct{})
		go func() { s.drain(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		_ = hs.Close()
	}
	cancel()
	cancelRequests()
	if loaded != nil {
		if err := <-loaded; err != nil && failed == nil && !errors.Is(err, context.Canceled) {
			cfg.log.Warn("model load ended with an error during shutdown", "err", err)
		}
	}
	s.close()
	return failed
}

// server serves the API over a pipeline and its sessions.
type server struct {
	cfg          serverConfig
	ready        atomic.Bool
	shuttingDown atomic.Bool
	p            *llava.Pipeline
	slots        *slotQueue
	nCtx         int
	created      int64
	client       *http.Client

	mu       sync.Mutex // guards closed and the inflight Add
	closed   bool
	inflight sync.WaitGroup // requests using the model
}

func newServer(cfg serverConfig) *server {
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.stderr == nil {
		cfg.stderr = io.Discard
	}
	return &server{cfg: cfg, created: time.Now().Unix(), client: &http.Client{Timeout: cfg.urlTimeout}}
}

// load opens the model pair and the sessions; the server is ready after.
func (s *server) load(ctx context.Context) error {
	pc := s.cfg.pipeline
	pc.Logger = s.cfg.log
	p, err := llava.Open(ctx, pc)
	if err != nil {
		return err
	}
	q := &slotQueue{free: make(chan *llava.Session, s.cfg.parallel), maxWait: s.cfg.queue, total: s.cfg.parallel,
		held: map[*llava.Session][]string{}}
	for range s.cfg.parallel {
		sess, err := p.NewSession(s.cfg.session)
		if err != nil {
			q.closeAll()
			p.Close()
			return err
		}
		s.nCtx = sess.NCtx()
		q.free <- sess
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // shut down while loading
		q.closeAll()
		p.Close()
		return context.Canceled
	}
	s.p, s.slots = p, q
	s.ready.Store(true)
	return nil
}

// drain refuses new model work and waits for the requests doing some.
func (s *server) drain() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
}

// close waits for requests using the model, then frees it.
func (s *server) close() {
	s.drain()
	s.ready.Store(false)
	if s.slots != nil {
		s.slots.closeAll()
	}
	if s.p != nil {
		s.p.Close()
	}
}

// enter registers a request that will use the model; false once closing.
func (s *server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// Handler routes the API.
func (s *server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("/chat/completions", s.chatCompletions)
	mux.HandleFunc("/v1/models", s.models)
	mux.HandleFunc("/models", s.models)
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		openai.WriteError(w, openai.Errorf(http.StatusNotFound, openai.TypeNotFound, "", "not_found",
			"no route %s %s (try POST /v1/chat/completions, GET /v1/models, GET /health)", r.Method, r.URL.Path))
	})
	return mux
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	openai.WriteError(w, openai.Errorf(http.StatusMethodNotAllowed, openai.TypeInvalidRequest, "", "method_not_allowed",
		"%s %s: use %s", r.Method, r.URL.Path, method))
	return false
}

func errLoading() *openai.Error {
	e := openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable, "", "loading", "the model is loading; try again shortly")
	e.RetryAfter = 1
	return e
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	if !s.ready.Load() {
		w.Header().Set("Retry-After", "1")
		openai.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
		return
	}
	idle, busy, waiting := s.slots.stats()
	openai.WriteJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "slots_idle": idle, "slots_processing": busy, "requests_waiting": waiting,
	})
}

func (s *server) models(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	openai.WriteJSON(w, http.StatusOK, openai.ModelList{Object: "list", Data: []openai.Model{
		{ID: s.cfg.model, Object: "model", Created: s.created, OwnedBy: "hiprune-go"},
	}})
}

// job is one request, converted for the pipeline.
type job struct {
	id        string
	prints    []string // fingerprints of the messages, for slot affinity
	req       *openai.Request
	msgs      []llava.Message // the last is the user message to answer
	images    []pendingImage  // decoded into msgs once the job has a session
	prune     llava.Options
	gen       llava.GenOptions
	maxTokens int // as the request gave it (0: not given)
}

// pendingImage is an image part not decoded yet.
type pendingImage struct {
	msg  int // index in job.msgs
	name string
	src  *openai.Image
}

func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	if !s.ready.Load() {
		openai.WriteError(w, errLoading())
		return
	}
	if !s.enter() {
		openai.WriteError(w, errShuttingDown())
		return
	}
	defer s.inflight.Done()
	ctx := r.Context()
	// A body trickling in must not hold the connection for ever; the
	// deadline is lifted once it is read (a stream may then take long).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.maxBody))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			openai.WriteError(w, openai.Errorf(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest, "", "request_too_large",
				"the request body is over the server's limit of %d MiB (--max-body-mib)", mbe.Limit>>20))
			return
		}
		openai.WriteError(w, openai.Invalid("", "invalid_body", "reading the request body: %v", err))
		return
	}
	req, apiErr := openai.ParseRequest(body, s.cfg.limits)
	if apiErr != nil {
		s.reject(w, apiErr)
		return
	}
	j, apiErr := s.prepare(req)
	if apiErr != nil {
		s.reject(w, apiErr)
		return
	}
	sess, err := s.slots.acquire(ctx, j.prints)
	switch {
	case errors.Is(err, errBusy):
		e := openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable, "", "server_busy",
			"all %d session(s) are busy and %d request(s) already wait (--parallel, --queue); retry later", s.cfg.parallel, s.cfg.queue)
		e.RetryAfter = 1
		s.reject(w, e)
		return
	case err != nil: // the client left while waiting
		s.cfg.log.Info("request cancelled while queued", "id", j.id)
		return
	}
	defer s.slots.release(sess)
	// Images are decoded once the request has a session, so at most
	// --parallel requests hold decoded pixels (up to imageprep's decode
	// budget per image) at a time.
	for _, pi := range j.images {
		img, apiErr := s.image(ctx, pi.src)
		if apiErr != nil {
			s.reject(w, apiErr)
			return
		}
		img.Name = pi.name
		j.msgs[pi.msg].Images = append(j.msgs[pi.msg].Images, img)
	}
	s.run(ctx, w, sess, j)
}

// bodyTimeout bounds reading a request body (20 MiB at 1 Mbit/s fits).
const bodyTimeout = 5 * time.Minute

func errShuttingDown() *openai.Error {
	return openai.Errorf(http.StatusServiceUnavailable, openai.TypeUnavailable, "", "shutting_down", "the server is shutting down")
}

func (s *server) reject(w http.ResponseWriter, e *openai.Error) {
	s.cfg.log.Info("request refused", "status", e.Status, "param", deref(e.Param), "error", e.Message)
	openai.WriteError(w, e)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// prepare applies the request's options over the server's defaults and
// lays out its messages, before it takes a session.
func (s *server) prepare(req *openai.Request) (*job, *openai.Error) {
	j := &job{id: newID(), req: req, prune: s.cfg.prune, gen: s.cfg.gen, maxTokens: req.MaxTokens}
	if req.MaxTokens > 0 {
		if req.MaxTokens > s.nCtx {
			return nil, openai.Invalid("max_tokens", "context_length_exceeded",
				"max_tokens = %d is past the %d-token context (-c)", req.MaxTokens, s.nCtx)
		}
		j.gen.MaxTokens = req.MaxTokens
	}
	if req.Temperature != nil {
		j.gen.Temp = float32(*req.Temperature)
	}
	if req.TopP != nil {
		j.gen.TopP = float32(*req.TopP)
	}
	switch {
	case req.Seed != nil:
		j.gen.Seed = uint32(uint64(*req.Seed))
	case s.cfg.randomSeed:
		j.gen.Seed = mrand.Uint32()
	}
	j.prune.Seed = uint64(j.gen.Seed)
	h := req.HiPrune
	if h.Method != nil {
		m, err := llava.ParseMethod(*h.Method)
		if err != nil {
			return nil, openai.Invalid("hiprune.method", "invalid_value", "hiprune.method: %v", err)
		}
		j.prune.Method = m
	}
	if h.Keep != nil || h.KeepRatio != nil {
		j.prune.Keep, j.prune.KeepRatio = 0, 0
		if h.Keep != nil {
			j.prune.Keep = *h.Keep
		} else {
			j.prune.KeepRatio = *h.KeepRatio
		}
		// A budget asks for pruning, as the CLI's /keep does.
		if h.Method == nil && j.prune.Method == llava.MethodNone {
			j.prune.Method = llava.MethodHiPrune
		}
	}
	if h.Alpha != nil {
		j.prune.Alpha = *h.Alpha
	}
	if h.ObjectLayer != nil {
		j.prune.ObjectLayer = *h.ObjectLayer
	}
	if err := j.prune.Validate(); err != nil {
		return nil, requestOptionError(err)
	}
	if err := j.gen.Validate(); err != nil {
		return nil, requestOptionError(err)
	}
	msgs := make([]llava.Message, len(req.Messages))
	for i, m := range req.Messages {
		var text []string
		for k, part := range m.Parts {
			if part.Image == nil {
				if strings.Contains(part.Text, llava.ImageMarker) {
					return nil, openai.Invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value",
						"messages[%d].content: the text holds %s, which this server reserves for images; send images as image_url parts", i, llava.ImageMarker)
				}
				text = append(text, part.Text)
				continue
			}
			j.images = append(j.images, pendingImage{msg: i, name: fmt.Sprintf("messages[%d].content[%d]", i, k), src: part.Image})
			text = append(text, llava.ImageMarker)
		}
		msgs[i].Role = m.Role
		msgs[i].Text = strings.Join(text, "\n")
	}
	j.msgs = msgs
	j.prints = fingerprints(req.Messages)
	return j, nil
}

// fingerprints identify each message (role, text, image bytes or URL), so
// that a request can be sent to the slot already holding the longest
// prefix of its conversation.
func fingerprints(msgs []openai.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		h := sha256.New()
		io.WriteString(h, m.Role)
		for _, p := range m.Parts {
			h.Write([]byte{0})
			if p.Image == nil {
				io.WriteString(h, p.Text)
				continue
			}
			h.Write(p.Image.Data)
			io.WriteString(h, p.Image.URL)
		}
		out[i] = string(h.Sum(nil))
	}
	return out
}

// answerPrint is the fingerprint of an assistant answer, as a later
// request resends it.
func answerPrint(text string) string {
	return fingerprints([]openai.Message{{Role: "assistant", Parts: []openai.Part{{Text: text}}}})[0]
}

// sharedPrefix counts the leading fingerprints a and b have in common.
func sharedPrefix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// requestFields are the request fields that set each library option.
var requestFields = map[string]string{
	"prune": "hiprune.method", "keep": "hiprune.keep", "keep-ratio": "hiprune.keep_ratio", "alpha": "hiprune.alpha",
	"object-layer": "hiprune.object_layer", "temp": "temperature", "top-p": "top_p",
}

// requestOptionError names the request field of an option out of range
// (a server flag's default is checked when the server starts).
func requestOptionError(err error) *openai.Error {
	var oe *llava.OptionError
	if errors.As(err, &oe) {
		if f, ok := requestFields[oe.Option]; ok {
			return openai.Invalid(f, "invalid_value", "%s = %v: %s", f, oe.Value, oe.Want)
		}
	}
	return openai.Invalid("", "invalid_value", "%v", err)
}

// image decodes an image part, fetching it first if it is a URL.
func (s *server) image(ctx context.Context, im *openai.Image) (*llava.Image, *openai.Error) {
	data := im.Data
	if im.URL != "" {
		var err error
		if data, err = s.fetch(ctx, im.URL); err != nil {
			return nil, openai.Invalid(im.Param, "image_url_fetch_failed", "%s: %v", im.Param, err)
		}
	}
	img, err := llava.DecodeImage(im.Param, bytes.NewReader(data), s.cfg.images)
	if err != nil {
		code := "invalid_image"
		switch {
		case errors.Is(err, imageprep.ErrTooLarge):
			code = "image_too_large"
		case errors.Is(err, imageprep.ErrFormat):
			code = "unsupported_image"
		}
		return nil, openai.Invalid(im.Param, code, "%s: %v", im.Param, err)
	}
	return img, nil
}

// fetch gets an image URL (only with --allow-image-urls) within the time
// limit and the body limit.
func (s *server) fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.urlTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the image: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the image: HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the image: %w", err)
	}
	if int64(len(data)) > s.cfg.maxBody {
		return nil, fmt.Errorf("the image at the URL is over the %d MiB limit", s.cfg.maxBody>>20)
	}
	return data, nil
}

// errStopSequence ends generation at a stop sequence.
var errStopSequence = errors.New("stop sequence")

// run evaluates the conversation in sess and answers, streaming or not.
func (s *server) run(ctx context.Context, w http.ResponseWriter, sess *llava.Session, j *job) {
	start := time.Now()
	s.slots.remember(sess, nil) // until this request's conversation is in it
	earlier, ask := j.msgs[:len(j.msgs)-1], j.msgs[len(j.msgs)-1]
	// The slot keeps what it holds of the conversation (its KV prefix, as
	// llama-server's prompt cache does) and evaluates the rest.
	prior, err := sess.Sync(ctx, earlier, j.prune)
	if err != nil {
		s.fail(ctx, w, j, err)
		return
	}
	priorTime := time.Since(start)
	stream := j.req.Stream
	sse := &sseWriter{w: w}
	stops := openai.NewStopMatcher(j.req.Stop)
	var answer strings.Builder
	gone := false // a write to the client failed
	send := func(text string) error {
		if text == "" {
			return nil
		}
		answer.WriteString(text)
		if stream {
			if err := sse.chunk(s.chunk(j, openai.Delta{Content: &text}, nil)); err != nil {
				gone = true
				return err
			}
		}
		return nil
	}
	turn := llava.Turn{Text: ask.Text, Images: ask.Images, Prune: j.prune, Gen: j.gen,
		OnToken: func(piece string) error {
			if s.cfg.tokenHook != nil {
				s.cfg.tokenHook(ctx)
			}
			text, stopped := stops.Push(piece)
			if err := send(text); err != nil {
				return err
			}
			if stopped {
				return errStopSequence
			}
			return nil
		}}
	r, err := sess.Prefill(ctx, turn)
	if err != nil {
		s.fail(ctx, w, j, err)
		return
	}
	st := &r.Stats
	merge(st, prior, priorTime)
	prompt := st.ReusedTokens + st.TextTokens + st.ImageTokens
	if j.maxTokens > 0 && prompt+j.maxTokens > s.nCtx {
		s.reject(w, openai.Invalid("max_tokens", "context_length_exceeded",
			"the messages take %d tokens and max_tokens asks for %d more: past the %d-token context (-c)", prompt, j.maxTokens, s.nCtx))
		return
	}
	if stream {
		sse.start()
		if err := sse.chunk(s.chunk(j, openai.Delta{Role: "assistant", Content: new(string)}, nil)); err != nil {
			return // the client is gone
		}
	}
	_, err = r.Generate(ctx)
	stopped := errors.Is(err, errStopSequence)
	if err == nil || stopped {
		s.slots.remember(sess, append(j.prints[:len(j.prints):len(j.prints)], answerPrint(answer.String())))
	}
	if gone {
		s.cfg.log.Info("request cancelled: the client disconnected", "id", j.id)
		return
	}
	if err != nil && !stopped {
		s.fail(ctx, w, j, err)
		return
	}
	if !stopped {
		if err := send(stops.Flush()); err != nil {
			return
		}
	}
	finish := "length"
	if stopped || st.StopReason == llava.StopEOG {
		finish = "stop"
	}
	usage, timings := s.report(j, st)
	if s.cfg.timings {
		printTimings(s.cfg.stderr, j.prune, st)
	}
	s.cfg.log.Info("chat completion", "id", j.id, "stream", stream, "prompt_tokens", usage.PromptTokens,
		"completion_tokens", usage.CompletionTokens, "image_tokens", fmt.Sprintf("%d->%d", usage.ImageTokensBefore, usage.ImageTokensAfter),
		"finish", finish, "ms", time.Since(start).Milliseconds())
	if !stream {
		openai.WriteJSON(w, http.StatusOK, openai.Completion{
			ID: j.id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.cfg.model,
			Choices: []openai.Choice{{Message: openai.ChatMessage{Role: "assistant", Content: answer.String()}, FinishReason: finish}},
			Usage:   usage, Timings: &timings,
		})
		return
	}
	last := s.chunk(j, openai.Delta{}, &finish)
	last.Timings = &timings
	if !j.req.IncludeUsage {
		last.Usage = &usage
	}
	if sse.chunk(last) != nil {
		return
	}
	if j.req.IncludeUsage {
		u := s.chunk(j, openai.Delta{}, nil)
		u.Choices, u.Usage = []openai.ChunkChoice{}, &usage
		if sse.chunk(u) != nil {
			return
		}
	}
	_ = sse.done()
}

// merge folds the earlier messages' evaluation into the last turn's stats.
func merge(st, prior *llava.Stats, priorTime time.Duration) {
	if prior == nil {
		return
	}
	st.Images = append(prior.Images, st.Images...)
	st.ReusedTokens += prior.ReusedTokens
	st.TextTokens += prior.TextTokens
	st.ImageTokens += prior.ImageTokens
	st.Prefill += prior.Prefill
	st.KVImageBytes += prior.KVImageBytes
	st.TTFT += priorTime
}

func (s *server) report(j *job, st *llava.Stats) (openai.Usage, openai.Timings) {
	u := openai.Usage{PromptTokens: st.ReusedTokens + st.TextTokens + st.ImageTokens, CompletionTokens: st.DecodeTokens}
	if st.ReusedTokens > 0 {
		u.PromptDetails = &openai.PromptDetails{CachedTokens: st.ReusedTokens}
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	var enc, sel time.Duration
	var encoded, cached, reused int
	for _, is := range st.Images {
		u.ImageTokensBefore += is.TokensBefore
		u.ImageTokensAfter += is.TokensAfter
		enc += is.Encode + is.Preprocess
		sel += is.Select
		switch {
		case is.Reused:
			reused++
		case is.Cached:
			cached++
		default:
			encoded++
		}
	}
	method := string(j.prune.Method)
	if method == "" {
		method = string(llava.MethodHiPrune)
	}
	msf := func(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }
	t := openai.Timings{
		Prune: method, ImageTokensBefore: u.ImageTokensBefore, ImageTokensAfter: u.ImageTokensAfter,
		EncodeMS: msf(enc), SelectMS: msf(sel), PrefillMS: msf(st.Prefill), TTFTMS: msf(st.TTFT),
		DecodeTPS: math.Round(st.DecodeTPS()*10) / 10, DecodeTokens: st.DecodeTokens, KVCells: st.KVCells,
		TextTokens: st.TextTokens, Stop: string(st.StopReason),
		ImagesEncoded: encoded, ImagesCached: cached, ImagesReused: reused, CacheN: st.ReusedTokens,
		PromptN: st.TextTokens + st.ImageTokens, PromptMS: msf(st.Prefill), PredictedN: st.DecodeTokens, PredictedMS: msf(st.Decode),
		PredictedPerSecond: math.Round(st.DecodeTPS()*10) / 10,
	}
	return u, t
}

func (s *server) chunk(j *job, d openai.Delta, finish *string) openai.Chunk {
	return openai.Chunk{ID: j.id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: s.cfg.model,
		Choices: []openai.ChunkChoice{{Delta: d, FinishReason: finish}}}
}

// fail answers a request whose model work failed: a 4xx for what the
// request asked (too long for the context, bad pruning options), nothing
// for a client that left, an error event on a stream already started.
func (s *server) fail(ctx context.Context, w http.ResponseWriter, j *job, err error) {
	var e *openai.Error
	switch {
	case ctx.Err() != nil && s.shuttingDown.Load():
		e = errShuttingDown()
	case ctx.Err() != nil:
		s.cfg.log.Info("request cancelled: the client disconnected", "id", j.id)
		return
	case errors.Is(err, llava.ErrContextFull):
		e = openai.Invalid("messages", "context_length_exceeded", "%s (the server's -c sets the context)", oneLine(err))
	case errors.Is(err, llava.ErrNoVision):
		e = openai.Invalid("messages", "images_not_supported", "%s: this model takes no images", oneLine(err))
	case errors.Is(err, llava.ErrOptions):
		e = openai.Invalid("hiprune", "invalid_value", "%s", oneLine(err))
	default:
		s.cfg.log.Error("request failed", "id", j.id, "err", err)
		e = openai.Errorf(http.StatusInternalServerError, openai.TypeServer, "", "internal_error", "%s", oneLine(err))
	}
	if h := w.Header().Get("Content-Type"); h == "text/event-stream" {
		// Mid-stream: the status is sent; say it in the stream, as
		// llama-server does.
		b, _ := json.Marshal(map[string]*openai.Error{"error": e})
		fmt.Fprintf(w, "data: %s\n\n", b)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return
	}
	s.reject(w, e)
}

// sseWriter writes server-sent events.
type sseWriter struct {
	w       http.ResponseWriter
	started bool
}

func (e *sseWriter) start() {
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
	e.started = true
}

func (e *sseWriter) chunk(c openai.Chunk) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return e.event(b)
}

func (e *sseWriter) done() error { return e.event([]byte("[DONE]")) }

func (e *sseWriter) event(data []byte) error {
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", data); err != nil {
		return err
	}
	return http.NewResponseController(e.w).Flush()
}

// errBusy means every session is taken and the queue is full.
var errBusy = errors.New("server busy")

// slotQueue hands out sessions: a request takes a free one, or waits in a
// bounded queue, or is refused.
type slotQueue struct {
	free    chan *llava.Session
	held    map[*llava.Session][]string // each session's last conversation (fingerprints), under mu
	mu      sync.Mutex
	waiting int
	maxWait int
	total   int
}

// acquire takes an idle session, the one whose last conversation shares
// the most leading messages with prints when several are idle (as
// llama-server picks the slot by prompt similarity), or waits for one.
func (q *slotQueue) acquire(ctx context.Context, prints []string) (*llava.Session, error) {
	q.mu.Lock()
	var idle []*llava.Session
	for len(q.free) > 0 {
		idle = append(idle, <-q.free)
	}
	if len(idle) > 0 {
		best := 0
		for i, s := range idle {
			if sharedPrefix(q.held[s], prints) > sharedPrefix(q.held[idle[best]], prints) {
				best = i
			}
		}
		for i, s := range idle {
			if i != best {
				q.free <- s // room: the channel holds every session
			}
		}
		q.mu.Unlock()
		return idle[best], nil
	}
	if q.waiting >= q.maxWait {
		q.mu.Unlock()
		return nil, errBusy
	}
	q.waiting++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.waiting--
		q.mu.Unlock()
	}()
	select {
	case s := <-q.free:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// remember records what a session's context holds now, for acquire.
func (q *slotQueue) remember(s *llava.Session, prints []string) {
	q.mu.Lock()
	q.held[s] = prints
	q.mu.Unlock()
}

func (q *slotQueue) release(s *llava.Session) { q.free <- s }

func (q *slotQueue) stats() (idle, busy, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	idle = len(q.free)
	return idle, q.total - idle, q.waiting
}

// closeAll frees the idle sessions (all of them, once requests are done).
func (q *slotQueue) closeAll() {
	for {
		select {
		case s := <-q.free:
			s.Close()
		default:
			return
		}
	}
}
