package imageprep

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/image/webp"

	"github.com/hiprune/hiprune-go/internal/fsutil"
)

// Sentinel errors; every error returned by this package wraps one of them
// (or, for a missing file, the *fs.PathError from the OS).
var (
	// ErrFormat: the data is not a JPEG, PNG, GIF or WebP image, or its header is invalid.
	ErrFormat = errors.New("imageprep: unsupported or unrecognised image format")
	// ErrCorrupt: the header was read but the pixel data is truncated or corrupt.
	ErrCorrupt = errors.New("imageprep: truncated or corrupt image data")
	// ErrTooLarge: the image has more pixels than Limits.MaxPixels, needs more
	// memory to decode than Limits.MaxDecodeBytes, or the input has more bytes
	// than Limits.MaxBytes.
	ErrTooLarge = errors.New("imageprep: image too large")
	// ErrEmpty: the image has zero width or height.
	ErrEmpty = errors.New("imageprep: zero-size image")
	// ErrParams: invalid Params (ImageSize < 1, Std with 0 or non-finite values) or mask arguments.
	ErrParams = errors.New("imageprep: invalid parameters")
)

// Limits guard decoding. The image header is read first, so an image with too
// many pixels is refused before any pixel is decoded.
type Limits struct {
	// MaxPixels is the largest accepted W*H; <= 0 means DefaultLimits.MaxPixels.
	MaxPixels int64
	// MaxBytes is the largest accepted input size in bytes; 0 (or less) means no limit.
	MaxBytes int64
	// MaxDecodeBytes is the memory budget of one decode: an upper bound of
	// what the decoder and the conversion to RGB allocate, computed from
	// the header (kind, size, bit depth, subsampling, progressive or
	// interlaced), must not exceed it. <= 0 means DefaultMaxDecodeBytes.
	MaxDecodeBytes int64
}

// DefaultLimits are the limits used when none are given.
var DefaultLimits = Limits{MaxPixels: 50_000_000, MaxDecodeBytes: DefaultMaxDecodeBytes}

// RGB is an 8-bit RGB image, row-major, interleaved: Pix[3*(y*W+x)+c].
// It is the same layout as llama.cpp's clip_image_u8.buf.
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a black w x h image.
func NewRGB(w, h int) *RGB {
	return &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
}

// At returns the colour of pixel (x, y).
func (m *RGB) At(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Set sets the colour of pixel (x, y).
func (m *RGB) Set(x, y int, r, g, b uint8) {
	i := 3 * (y*m.W + x)
	m.Pix[i], m.Pix[i+1], m.Pix[i+2] = r, g, b
}

// ToImage converts m to an opaque *image.RGBA.
func (m *RGB) ToImage() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff
	}
	return out
}

func (m *RGB) validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil image", ErrParams)
	}
	if m.W <= 0 || m.H <= 0 {
		return fmt.Errorf("%w: %d x %d", ErrEmpty, m.W, m.H)
	}
	if int64(len(m.Pix)) != 3*int64(m.W)*int64(m.H) {
		return fmt.Errorf("%w: RGB image %d x %d has %d bytes, want %d", ErrParams, m.W, m.H, len(m.Pix), 3*int64(m.W)*int64(m.H))
	}
	return nil
}

// DecodeFile opens path and decodes it with Decode.
func DecodeFile(path string, lim Limits) (*RGB, error) {
	// A FIFO or a device would block or never end: refuse before opening.
	if err := fsutil.CheckInput(path); err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err) // *fs.PathError names the path
	}
	defer f.Close()
	img, err := Decode(f, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Decode reads a JPEG, PNG, GIF (first frame) or WebP image from r and
// returns its 8-bit RGB pixels the way llama.cpp's stb_image call does
// (3 channels requested: alpha is dropped, not composited; see the package
// documentation for JPEG and GIF details).
func Decode(r io.Reader, lim Limits) (*RGB, error) {
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = DefaultLimits.MaxPixels
	}
	lr := &limitedReader{r: r, max: lim.MaxBytes}
	br := bufio.NewReaderSize(lr, 64<<10)
	head, _ := br.Peek(32)
	if len(head) == 0 {
		if lr.exceeded {
			return nil, lr.tooLarge()
		}
		if lr.err != nil && lr.err != io.EOF {
			return nil, fmt.Errorf("imageprep: reading image: %w", lr.err)
		}
		return nil, fmt.Errorf("%w: empty input", ErrFormat)
	}
	kind := sniff(head)
	if kind == "" {
		return nil, fmt.Errorf("%w: %s", ErrFormat, describeUnknown(head))
	}

	// Read the header only, keeping a copy of the bytes consumed so the full
	// decoder can replay them.
	var rec bytes.Buffer
	cfg, err := decodeConfig(kind, io.TeeReader(br, &rec))
	if err != nil {
		if lr.exceeded {
			return nil, lr.tooLarge()
		}
		if kind == "png" && pngZeroSize(head) {
			return nil, fmt.Errorf("%w: PNG header says %d x %d", ErrEmpty,
				binary.BigEndian.Uint32(head[16:20]), binary.BigEndian.Uint32(head[20:24]))
		}
		return nil, fmt.Errorf("%w: reading %s header: %w", ErrFormat, kind, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %s header says %d x %d", ErrEmpty, kind, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return nil, fmt.Errorf("%w: %s image is %d x %d = %d pixels, over the limit of %d pixels",
			ErrTooLarge, kind, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	header := append([]byte(nil), rec.Bytes()...)
	budget := lim.MaxDecodeBytes
	if budget <= 0 {
		budget = DefaultMaxDecodeBytes
	}
	if need := decodeCost(kind, cfg, header); need > budget {
		return nil, fmt.Errorf("%w: decoding this %d x %d %s image needs up to %d MiB, over the %d MiB memory budget",
			ErrTooLarge, cfg.Width, cfg.Height, kind, (need+(1<<20)-1)>>20, budget>>20)
	}
	full := io.MultiReader(bytes.NewReader(header), br)

	var img image.Image
	switch kind {
	case "jpeg":
		img, err = jpeg.Decode(full)
	case "png":
		img, err = png.Decode(full)
	case "gif":
		img, err = gif.Decode(full)
	case "webp":
		img, err = webp.Decode(full)
	}
	if err != nil {
		if lr.exceeded {
			return nil, lr.tooLarge()
		}
		return nil, fmt.Errorf("%w: decoding %s (%d x %d): %w", ErrCorrupt, kind, cfg.Width, cfg.Height, err)
	}
	b := img.Bounds()
	if kind != "gif" && (b.Dx() != cfg.Width || b.Dy() != cfg.Height) {
		return nil, fmt.Errorf("%w: %s header says %d x %d but decoded %d x %d", ErrCorrupt, kind, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}
	switch kind {
	case "jpeg":
		return jpegToRGB(img), nil
	case "gif":
		return gifFirstFrame(img, header, cfg.Width, cfg.Height)
	default:
		return toRGB(img), nil
	}
}

func decodeConfig(kind string, r io.Reader) (image.Config, error) {
	switch kind {
	case "jpeg":
		return jpeg.DecodeConfig(r)
	case "png":
		return png.DecodeConfig(r)
	case "gif":
		return gif.DecodeConfig(r)
	case "webp":
		return webp.DecodeConfig(r)
	}
	return image.Config{}, fmt.Errorf("unknown kind %q", kind)
}

// sniff names the format from the magic bytes, or returns "".
func sniff(h []byte) string {
	switch {
	case bytes.HasPrefix(h, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(h, []byte{0xff, 0xd8}):
		return "jpeg"
	case bytes.HasPrefix(h, []byte("GIF87a")), bytes.HasPrefix(h, []byte("GIF89a")):
		return "gif"
	case len(h) >= 16 && bytes.HasPrefix(h, []byte("RIFF")) && string(h[8:12]) == "WEBP" && string(h[12:15]) == "VP8":
		return "webp"
	}
	return ""
}

func pngZeroSize(h []byte) bool {
	return len(h) >= 24 && string(h[12:16]) == "IHDR" &&
		(binary.BigEndian.Uint32(h[16:20]) == 0 || binary.BigEndian.Uint32(h[20:24]) == 0)
}

// describeUnknown says what the data looks like, for the ErrFormat message.
func describeUnknown(h []byte) string {
	known := []struct{ magic, name string }{
		{"BM", "BMP"}, {"II*\x00", "TIFF"}, {"MM\x00*", "TIFF"}, {"%PDF", "PDF"},
		{"\x00\x00\x01\x00", "ICO"}, {"8BPS", "PSD"}, {"PK\x03\x04", "ZIP archive"},
		{"\x1f\x8b", "gzip data"}, {"GGUF", "GGUF model file"},
	}
	for _, k := range known {
		if bytes.HasPrefix(h, []byte(k.magic)) {
			return fmt.Sprintf("data looks like %s, which is not supported (want JPEG, PNG, GIF or WebP)", k.name)
		}
	}
	if len(h) >= 12 && string(h[4:8]) == "ftyp" {
		return fmt.Sprintf("data looks like an ISO media file (brand %q, e.g. HEIC/AVIF), which is not supported (want JPEG, PNG, GIF or WebP)", h[8:12])
	}
	if bytes.HasPrefix(h, []byte("RIFF")) {
		return "RIFF container that is not WebP"
	}
	if looksLikeText(h) {
		t := bytes.TrimSpace(h)
		if bytes.HasPrefix(t, []byte("<svg")) || bytes.HasPrefix(t, []byte("<?xml")) {
			return fmt.Sprintf("data looks like XML/SVG text (%q), not a raster image", h)
		}
		return fmt.Sprintf("data looks like text (%q), not an image", h)
	}
	return fmt.Sprintf("not a JPEG, PNG, GIF or WebP image (first bytes % x)", h[:min(len(h), 12)])
}

func looksLikeText(h []byte) bool {
	// The peeked prefix may end inside a multi-byte rune.
	for cut := 0; cut <= 3 && cut < len(h); cut++ {
		t := h[:len(h)-cut]
		if !utf8.Valid(t) {
			continue
		}
		for _, c := range t {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
		}
		return true
	}
	return false
}

// limitedReader fails once more than max bytes have been read (max <= 0: no limit).
type limitedReader struct {
	r        io.Reader
	max, n   int64
	exceeded bool
	err      error
}

var errByteLimit = errors.New("byte limit exceeded")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errByteLimit
	}
	if l.max > 0 && int64(len(p)) > l.max-l.n+1 {
		p = p[:l.max-l.n+1]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.max > 0 && l.n > l.max {
		l.exceeded = true
		l.n = l.max
		n--
		if n < 0 {
			n = 0
		}
		err = errByteLimit
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

func (l *limitedReader) tooLarge() error {
	return fmt.Errorf("%w: input is larger than the limit of %d bytes", ErrTooLarge, l.max)
}
