package llava

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"

	"github.com/hiprune/hiprune-go/internal/fsutil"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// An image's identity: a SHA-256 of the bytes it was decoded from (what
// DecodeImage and LoadImage read), or of its pixels for an Image built by
// hand. Two requests that send the same file get the same key, so the
// cache and a session's KV prefix can recognise the image again.

// DecodeImage reads an image (JPEG, PNG, GIF or WebP) from r under lim
// (the zero value: imageprep.DefaultLimits) and remembers a hash of the
// bytes read, so that the pipeline's image cache and Session.Sync
// recognise the same image in later requests without hashing its pixels.
func DecodeImage(name string, r io.Reader, lim imageprep.Limits) (*Image, error) {
	if lim.MaxPixels == 0 && lim.MaxBytes == 0 {
		lim = imageprep.DefaultLimits
	}
	h := sha256.New()
	rgb, err := imageprep.Decode(io.TeeReader(r, h), lim)
	if err != nil {
		return nil, err
	}
	// The decoder may stop before the end of the input; the pixels depend
	// only on what it read, so that is what the key covers.
	img := &Image{Name: name, RGB: rgb}
	copy(img.digest[:], h.Sum(nil))
	img.hashed = true
	return img, nil
}

// LoadImage decodes an image file under the pipeline's limits.
func (p *Pipeline) LoadImage(path string) (*Image, error) {
	if err := fsutil.CheckInput(path); err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err) // *fs.PathError names the path
	}
	defer f.Close()
	img, err := DecodeImage(path, f, p.cfg.ImageLimits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// id is the image's identity for the cache and for Session.Sync.
func (img *Image) id() string {
	if img.hashed {
		return "b:" + hex.EncodeToString(img.digest[:])
	}
	h := sha256.New()
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(img.RGB.W))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(img.RGB.H))
	h.Write(hdr[:])
	h.Write(img.RGB.Pix)
	return "p:" + hex.EncodeToString(h.Sum(nil))
}

// key names every option that changes which rows are kept or what they
// hold; with an image's id it identifies the image's kept rows.
func (o Options) key() string {
	m := o.method()
	seed := uint64(0)
	if m == MethodRandom {
		seed = o.Seed
	}
	return fmt.Sprintf("/%s/k%d/r%g/a%g/l%d/s%d", m, o.Keep, o.KeepRatio, o.alpha(), o.ObjectLayer, seed)
}

// CacheStats count the work the image cache saved (Pipeline.CacheStats).
type CacheStats struct {
	Encodes        int64 // images run through the vision encoder
	Hits, Misses   int64 // cache lookups (0 when the cache is off)
	Entries        int   // images held now
	Bytes, MaxSize int64 // their embeddings' size now, and the bound
}

// imageCache is a bounded LRU of pruned images, shared by every session
// of a pipeline. Entries are immutable: each owns its rows, and a caller
// may hold one after it is evicted.
type imageCache struct {
	max    int64
	flight singleflight.Group

	mu     sync.Mutex
	lru    *list.List // of *cacheEntry, most recent first
	byKey  map[string]*list.Element
	size   int64
	hits   atomic.Int64
	misses atomic.Int64
}

type cacheEntry struct {
	key string
	pr  *Pruned
}

func newImageCache(max int64) *imageCache {
	return &imageCache{max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

func entrySize(pr *Pruned) int64 { return int64(len(pr.Embd))*4 + int64(len(pr.Kept))*8 + 256 }

func (c *imageCache) get(key string) *Pruned {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cacheEntry).pr
	}
	return nil
}

func (c *imageCache) put(key string, pr *Pruned) {
	n := entrySize(pr)
	if n > c.max {
		return // larger than the whole cache: never worth evicting everything
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	c.byKey[key] = c.lru.PushFront(&cacheEntry{key: key, pr: pr})
	c.size += n
	for c.size > c.max {
		old := c.lru.Back()
		ce := old.Value.(*cacheEntry)
		c.lru.Remove(old)
		delete(c.byKey, ce.key)
		c.size -= entrySize(ce.pr)
	}
}

// CacheStats reports the image cache and how many images were encoded.
func (p *Pipeline) CacheStats() CacheStats {
	c := p.cache
	st := CacheStats{Encodes: p.encodes.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(), MaxSize: c.max}
	c.mu.Lock()
	st.Entries, st.Bytes = c.lru.Len(), c.size
	c.mu.Unlock()
	return st
}

// prepareShared returns img's kept rows under o: from the cache when it
// holds them (cached reports that), else encoded and pruned, and then
// cached. owned says the caller must Release the result; a cached result
// is shared and must not be modified or released. Concurrent requests for
// the same image and options encode it once.
func (p *Pipeline) prepareShared(ctx context.Context, img *Image, o Options) (pr *Pruned, owned, cached bool, err error) {
	c := p.cache
	if c.max <= 0 {
		pr, err = p.PrepareImage(ctx, img, o)
		return pr, true, false, err
	}
	key := img.id() + o.key()
	if pr := c.get(key); pr != nil {
		c.hits.Add(1)
		return pr, false, true, nil
	}
	c.misses.Add(1)
	do := func() (any, error) {
		if pr := c.get(key); pr != nil { // cached while this call waited
			return pr, nil
		}
		enc, err := p.Encode(ctx, img, o.ObjectLayer)
		if err != nil {
			return nil, err
		}
		defer enc.Release()
		pr, err := p.prune(ctx, enc, o, false) // a copy of the kept rows, owned by the entry
		if err != nil {
			return nil, err
		}
		c.put(key, pr)
		return pr, nil
	}
	v, err, shared := c.flight.Do(key, do)
	if shared && err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The request that ran the encoder went away; this one has not.
		v, err = do()
	}
	if err != nil {
		return nil, false, false, err
	}
	return v.(*Pruned), false, false, nil
}
