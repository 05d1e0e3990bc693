package testmodel

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// SentencePiece token types as llama.cpp reads them from
// tokenizer.ggml.token_type (enum llama_token_type in include/llama.h).
const (
	TokenNormal  int32 = 1
	TokenUnknown int32 = 2
	TokenControl int32 = 3
	TokenByte    int32 = 6
)

// Special token ids of the "llama" (SPM) tokenizer; they are also llama.cpp's
// defaults for tokenizer model "llama" (src/llama-vocab.cpp).
const (
	UnkID = 0
	BOSID = 1
	EOSID = 2
)

// SpaceMarker is SentencePiece's whitespace symbol U+2581.
const SpaceMarker = "▁"

// Vocab is a SentencePiece-style vocabulary in llama.cpp's GGUF form.
type Vocab struct {
	Tokens []string
	Scores []float32
	Types  []int32
	index  map[string]int
}

// Len is the number of tokens.
func (v *Vocab) Len() int { return len(v.Tokens) }

// ID returns the id of piece, if present.
func (v *Vocab) ID(piece string) (int, bool) {
	id, ok := v.index[piece]
	return id, ok
}

// add appends a piece; a repeated piece is an error (llama.cpp aborts the
// whole process on one: GGML_ASSERT(id_to_token.size() == token_to_id.size())).
func (v *Vocab) add(piece string, typ int32, score float32) error {
	if piece == "" {
		return fmt.Errorf("testmodel: empty vocabulary piece at id %d", len(v.Tokens))
	}
	if !utf8.ValidString(piece) {
		return fmt.Errorf("testmodel: vocabulary piece %q at id %d is not valid UTF-8", piece, len(v.Tokens))
	}
	if id, dup := v.index[piece]; dup {
		return fmt.Errorf("testmodel: duplicate vocabulary piece %q (ids %d and %d)", piece, id, len(v.Tokens))
	}
	v.index[piece] = len(v.Tokens)
	v.Tokens = append(v.Tokens, piece)
	v.Types = append(v.Types, typ)
	v.Scores = append(v.Scores, score)
	return nil
}

// Common English words (lower case). Every word, its capitalised form, with
// and without the ▁ prefix, and all their prefixes become pieces, so the SPM
// merge loop can build whole words; anything else falls back to single
// characters and then to the <0xXX> byte tokens.
var commonWords = strings.Fields(`
the of and to in is it you that he was for on are with as his they be at one
have this from or had by hot word but what some we can out other were all there
when up use your how said an each she which do their time if will way about many
then them write would like so these her long make thing see him two has look more
day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn cause
much mean before move right boy old too same tell does set three want air well also
play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us
again animal point mother world near build self earth father head stand own page
should country found answer school grow study still learn plant cover food sun four
between state keep eye never last let thought city tree cross farm hard start might
story saw far sea draw left late run while press close night real life few north
open seem together next white children begin got walk example ease paper group always
music those both mark often letter until mile river car feet care second book carry
took science eat room friend began idea fish mountain stop once base hear horse cut
sure watch color colour face wood main enough plain girl usual young ready above ever
red list though feel talk bird soon body dog family direct pose leave song measure
door product black short numeral class wind question happen complete ship area half
rock order fire south problem piece told knew pass since top whole king space heard
best hour better true during hundred five remember step early hold west ground
interest reach fast verb sing listen six table travel less morning ten simple several
vowel toward war lay against pattern slow center love person money serve appear road
map rain rule govern pull cold notice voice unit power town fine certain fly fall lead
cry dark machine note wait plan figure star box noun field rest correct able pound
done beauty drive stood contain front teach week final gave green oh quick develop
ocean warm free minute strong special mind behind clear tail produce fact street inch
multiply nothing course stay wheel full force blue object decide surface deep moon
island foot system busy test record boat common gold possible plane stead dry wonder
laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes
distant fill east paint language among image photo describe shows showing contains
circle square triangle rectangle shape shapes background gradient left right top
bottom middle corner orange yellow purple pink brown gray grey cat cup ball person
user assistant system human question answer please thank hello hi sure detail details
`)

// punctuation pieces (with and without ▁)
var punctuation = strings.Fields(`. , ! ? ; : ' " - ( ) [ ] { } / \ @ # $ % & * + = < > _ ~ ^ | ... -- :) 's n't 're 've 'll 'm 'd`)

// extraPieces are frequent multi-character pieces without a word boundary.
var extraPieces = strings.Fields(`ing ed er ly es tion ment ness able ful less est ers ies ity ous ive al ic`)

var builtinSize = sync.OnceValue(func() int {
	v, err := BuildVocab(0)
	if err != nil {
		panic(err) // impossible with the fixed word lists; covered by tests
	}
	return v.Len()
})

// BuiltinVocabSize is the size of the vocabulary BuildVocab(0) returns.
func BuiltinVocabSize() int { return builtinSize() }

// BuildVocab builds the vocabulary: <unk> (0, UNKNOWN), <s> (1, CONTROL),
// </s> (2, CONTROL), the 256 byte-fallback tokens <0x00>..<0xFF> (BYTE), then
// NORMAL pieces with strictly decreasing scores: ▁, single letters, digits and
// punctuation (with and without ▁), then words and their prefixes. If size > 0
// the vocabulary is padded with unique synthetic pieces to exactly size tokens
// (an error if size is below the built-in size). It never produces a repeated
// piece: every piece passes through a set and a repeat is an error.
func BuildVocab(size int) (*Vocab, error) { return BuildVocabSpecials(size, nil) }

// BuildVocabSpecials is BuildVocab with the given CONTROL pieces (score 0)
// between the built-in pieces and the padding: their ids follow the
// built-in vocabulary, and size counts them.
func BuildVocabSpecials(size int, specials []string) (*Vocab, error) {
	v := &Vocab{index: map[string]int{}}
	steps := []struct {
		piece string
		typ   int32
	}{{"<unk>", TokenUnknown}, {"<s>", TokenControl}, {"</s>", TokenControl}}
	for _, s := range steps {
		if err := v.add(s.piece, s.typ, 0); err != nil {
			return nil, err
		}
	}
	for b := 0; b < 256; b++ {
		// same spelling llama.cpp looks up in byte_to_token: "<0x%02X>"
		if err := v.add(fmt.Sprintf("<0x%02X>", b), TokenByte, 0); err != nil {
			return nil, err
		}
	}

	// Candidate pieces in priority order; candidates may repeat (shared
	// prefixes), so they are de-duplicated here, keeping the first occurrence.
	var cands []string
	seen := map[string]bool{}
	push := func(p string) {
		if !seen[p] {
			seen[p] = true
			cands = append(cands, p)
		}
	}
	push(SpaceMarker)
	for c := 'a'; c <= 'z'; c++ {
		push(string(c))
		push(SpaceMarker + string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		push(string(c))
		push(SpaceMarker + string(c))
	}
	for c := '0'; c <= '9'; c++ {
		push(string(c))
		push(SpaceMarker + string(c))
	}
	for _, p := range punctuation {
		push(p)
		push(SpaceMarker + p)
	}
	for _, p := range extraPieces {
		push(p)
	}
	for _, w := range commonWords {
		for _, form := range []string{w, capitalize(w)} {
			for _, pre := range []string{SpaceMarker, ""} {
				full := pre + form
				// all prefixes, shortest first, so merges can grow the word
				for i := len(pre) + 1; i <= len(full); i++ {
					if utf8.ValidString(full[:i]) {
						push(full[:i])
					}
				}
			}
		}
	}
	next := float32(-1)
	for _, p := range cands {
		if _, ok := v.index[p]; ok {
			continue // only possible for specials/bytes spelled the same; none are
		}
		if err := v.add(p, TokenNormal, next); err != nil {
			return nil, err
		}
		next--
	}

	for _, p := range specials {
		if err := v.add(p, TokenControl, 0); err != nil {
			return nil, err
		}
	}
	if size > 0 {
		if size < v.Len() {
			return nil, fmt.Errorf("testmodel: requested vocabulary size %d is smaller than the built-in vocabulary (%d tokens)", size, v.Len())
		}
		for i := 0; v.Len() < size; i++ {
			p := synthPiece(i)
			if _, ok := v.index[p]; ok {
				continue // collides with a real word: skip, never repeat
			}
			if err := v.add(p, TokenNormal, next); err != nil {
				return nil, err
			}
			next--
		}
	}
	return v, nil
}

// synthPiece returns the i-th synthetic piece: ▁ followed by a bijective
// base-26 spelling of i+26*27 (so at least three letters), alternating with the
// same spelling without ▁. Distinct i give distinct pieces.
func synthPiece(i int) string {
	n := i/2 + 26*27 // skip the one- and two-letter spellings
	var b []byte
	for n >= 0 {
		b = append(b, byte('a'+n%26))
		n = n/26 - 1
	}
	for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
		b[l], b[r] = b[r], b[l]
	}
	if i%2 == 0 {
		return SpaceMarker + string(b)
	}
	return string(b)
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
