package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// rowSamples are the runs of one configuration.
type rowSamples struct {
	name    string
	samples []sample
}

// Row is one configuration's medians (JSON field names are the issue's).
type Row struct {
	Config       string    `json:"config"`
	ImageTokens  int       `json:"image_tokens"`
	TextTokens   int       `json:"text_tokens"`
	PreprocessMS float64   `json:"preprocess_ms"`
	EncodeMS     float64   `json:"encode_ms"`
	SelectMS     float64   `json:"select_ms"`
	PrefillMS    float64   `json:"prefill_ms"`
	TTFTMS       float64   `json:"ttft_ms"`
	DecodeTPS    float64   `json:"decode_tps"`
	DecodeTokens int       `json:"decode_tokens"`
	KVImageMiB   float64   `json:"kv_image_mib"`
	TTFTRatio    float64   `json:"ttft_ratio_vs_mtmd"`
	TTFTRunsMS   []float64 `json:"ttft_runs_ms"` // every run, in order, to judge the noise
	OthersCPU    []float64 `json:"others_cpu_runs"`
}

// Floor is the lower bound on a pruned run's TTFT: llama.cpp's
// encode time plus our prefill of N' image tokens and the text.
type Floor struct {
	Config     string  `json:"config"`
	Keep       int     `json:"keep"`
	FloorMS    float64 `json:"floor_ms"`
	FloorRatio float64 `json:"floor_ratio_vs_mtmd"` // floor / mtmd's TTFT
	TTFTMS     float64 `json:"ttft_ms"`
	TTFTRatio  float64 `json:"ttft_ratio_vs_floor"` // our TTFT / floor
}

// Target is one of the acceptance targets.
type Target struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
	OK     bool   `json:"ok"`
}

// Report is what bench prints and writes.
type Report struct {
	Model      string  `json:"model"`
	CPU        string  `json:"cpu"`
	Device     string  `json:"device,omitempty"` // the GPU (-ngl, -encoder-gpu); empty on the CPU
	Threads    int     `json:"threads"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Rows       []Row   `json:"rows"`

	EncoderOursMS     float64   `json:"encoder_ours_ms"`
	EncoderLlamaCppMS float64   `json:"encoder_llamacpp_ms"`
	EncoderRatio      float64   `json:"encoder_ratio"`
	EncoderOursRunsMS []float64 `json:"encoder_ours_runs_ms"`
	EncoderLCPPRunsMS []float64 `json:"encoder_llamacpp_runs_ms"`
	// EncoderSplitMS is our encoder as HiPrune N' = 64 runs it (the last
	// block's MLP and the projector for the kept tokens only), and
	// EncoderSplitRatio its ratio to the whole encoder (EncoderOursMS).
	EncoderSplitMS     float64   `json:"encoder_split64_ms,omitempty"`
	EncoderSplitRatio  float64   `json:"encoder_split64_ratio,omitempty"`
	EncoderSplitRunsMS []float64 `json:"encoder_split64_runs_ms,omitempty"`
	// EncoderQ8MS is our encoder with q8_0 matrix weights (whole), and
	// EncoderQ8Ratio its ratio to the f16 one (EncoderOursMS).
	EncoderQ8MS     float64   `json:"encoder_q8_0_ms,omitempty"`
	EncoderQ8Ratio  float64   `json:"encoder_q8_0_ratio,omitempty"`
	EncoderQ8RunsMS []float64 `json:"encoder_q8_0_runs_ms,omitempty"`
	// EncoderQ4MS is our encoder with q4_0 matrix weights (whole) in
	// EncoderQ4Buffer, where the pipeline puts them ("CPU_REPACK" where
	// ggml repacks q4_0 for the CPU), and EncoderQ4PlainMS the same in the
	// plain buffer when that differs; ratios to EncoderOursMS.
	EncoderQ4MS          float64   `json:"encoder_q4_0_ms,omitempty"`
	EncoderQ4Ratio       float64   `json:"encoder_q4_0_ratio,omitempty"`
	EncoderQ4Buffer      string    `json:"encoder_q4_0_buffer,omitempty"`
	EncoderQ4RunsMS      []float64 `json:"encoder_q4_0_runs_ms,omitempty"`
	EncoderQ4PlainMS     float64   `json:"encoder_q4_0_plain_ms,omitempty"`
	EncoderQ4PlainRatio  float64   `json:"encoder_q4_0_plain_ratio,omitempty"`
	EncoderQ4PlainRunsMS []float64 `json:"encoder_q4_0_plain_runs_ms,omitempty"`
	// NoRepack: run with -no-repack (every weight in ggml's plain buffer).
	NoRepack bool `json:"no_repack"`
	// EncoderFlashAttn is the flash-attention setting our encoder chose
	// (auto); EncoderOtherFlashMS is our encoder whole with the other one,
	// and EncoderOtherFlashRatio its ratio to EncoderOursMS.
	EncoderFlashAttn        bool      `json:"encoder_flash_attn"`
	EncoderOtherFlashMS     float64   `json:"encoder_other_flash_ms,omitempty"`
	EncoderOtherFlashRatio  float64   `json:"encoder_other_flash_ratio,omitempty"`
	EncoderOtherFlashRunsMS []float64 `json:"encoder_other_flash_runs_ms,omitempty"`
	// CPUAMX: the CPU has AMX (amx_int8 in /proc/cpuinfo's flags).
	CPUAMX bool `json:"cpu_amx"`

	// ImageNote says what a dynamic-resolution (Qwen2.5-VL) image became.
	ImageNote string `json:"image_note,omitempty"`

	Floors  []Floor  `json:"floors"`
	Targets []Target `json:"targets"`
	// Resend is turn 2 of a conversation resent whole (resend.go).
	Resend []Resend `json:"resend,omitempty"`

	Runs       int     `json:"runs"`
	EncRuns    int     `json:"encoder_runs"`
	NCtx       int     `json:"n_ctx"`
	NBatch     int     `json:"n_batch"`
	NPredict   int     `json:"n_predict"`
	TextTokens int     `json:"text_tokens"`
	Image      string  `json:"image"`
	GOARCH     string  `json:"goarch"`
	WallS      float64 `json:"wall_s"`
	// OthersCPUMax is the largest share of the machine's CPU that other
	// processes took during any timed run: above a few percent, llama.cpp's
	// spinning barriers make the figures unreliable.
	OthersCPUMax float64 `json:"others_cpu_max"`
}

const mib = 1 << 20

// prunedRow is a pruned configuration and its budget N' (0: a ratio, whose
// N' is the tokens the row kept).
type prunedRow struct {
	name string
	keep int
}

func buildReport(o *options, textTokens int, enc encoderResult, rows []rowSamples, pruned []prunedRow) *Report {
	rep := &Report{
		Model: o.model, CPU: cpuName(), CPUAMX: cpuHasFlag("amx_int8"), Device: o.device, Threads: o.threads, NoRepack: o.noRepack,
		EncoderOursMS: median(enc.OursMS), EncoderLlamaCppMS: median(enc.LlamaCppMS),
		EncoderOursRunsMS: enc.OursMS, EncoderLCPPRunsMS: enc.LlamaCppMS,
		Runs: o.runs, EncRuns: o.encRuns, NCtx: o.nCtx, NBatch: o.nBatch, NPredict: o.nPredict,
		TextTokens: textTokens, Image: fmt.Sprintf("testmodel.SampleImage(%d, %d, %d)", o.imgW, o.imgH, o.seed),
		GOARCH: runtime.GOARCH,
	}
	for _, x := range enc.OthersCPU {
		rep.OthersCPUMax = max(rep.OthersCPUMax, x)
	}
	for _, rs := range rows {
		for _, s := range rs.samples {
			rep.OthersCPUMax = max(rep.OthersCPUMax, s.OthersCPU)
		}
	}
	if rep.EncoderLlamaCppMS > 0 {
		rep.EncoderRatio = rep.EncoderOursMS / rep.EncoderLlamaCppMS
	}
	rep.EncoderSplitMS, rep.EncoderSplitRatio, rep.EncoderSplitRunsMS = vsOurs(enc.SplitMS, rep.EncoderOursMS)
	rep.EncoderQ8MS, rep.EncoderQ8Ratio, rep.EncoderQ8RunsMS = vsOurs(enc.Q8MS, rep.EncoderOursMS)
	rep.EncoderQ4MS, rep.EncoderQ4Ratio, rep.EncoderQ4RunsMS = vsOurs(enc.Q4MS, rep.EncoderOursMS)
	if rep.EncoderQ4MS > 0 {
		rep.EncoderQ4Buffer = enc.Q4Buffer
	}
	rep.EncoderQ4PlainMS, rep.EncoderQ4PlainRatio, rep.EncoderQ4PlainRunsMS = vsOurs(enc.Q4PlainMS, rep.EncoderOursMS)
	rep.EncoderOtherFlashMS, rep.EncoderOtherFlashRatio, rep.EncoderOtherFlashRunsMS = vsOurs(enc.OtherFlashMS, rep.EncoderOursMS)
	if rep.EncoderOtherFlashMS > 0 {
		rep.EncoderFlashAttn = !enc.OtherFlashOn
	}
	for _, rs := range rows {
		rep.Rows = append(rep.Rows, medianRow(rs))
	}
	var base *Row
	for i := range rep.Rows {
		if rep.Rows[i].Config == "mtmd" {
			base = &rep.Rows[i]
		}
	}
	if base != nil && base.TTFTMS > 0 {
		for i := range rep.Rows {
			rep.Rows[i].TTFTRatio = rep.Rows[i].TTFTMS / base.TTFTMS
		}
	}
	rep.Floors, rep.Targets = evaluate(rep.Rows, pruned)
	return rep
}

func medianRow(rs rowSamples) Row {
	col := func(f func(s sample) float64) float64 {
		xs := make([]float64, len(rs.samples))
		for i, s := range rs.samples {
			xs[i] = f(s)
		}
		return median(xs)
	}
	r := Row{Config: rs.name}
	if len(rs.samples) == 0 {
		return r
	}
	// Token counts do not vary between runs (greedy decoding, fixed
	// image); report the first run's, the median of the rest.
	r.ImageTokens = rs.samples[0].ImageTokens
	r.TextTokens = rs.samples[0].TextTokens
	r.DecodeTokens = rs.samples[0].DecodeTokens
	r.PreprocessMS = col(func(s sample) float64 { return ms(s.Preprocess) })
	r.EncodeMS = col(func(s sample) float64 { return ms(s.Encode) })
	r.SelectMS = col(func(s sample) float64 { return ms(s.Select) })
	r.PrefillMS = col(func(s sample) float64 { return ms(s.Prefill) })
	r.TTFTMS = col(func(s sample) float64 { return ms(s.TTFT) })
	r.DecodeTPS = col(func(s sample) float64 { return s.DecodeTPS })
	r.KVImageMiB = col(func(s sample) float64 { return float64(s.KVImageBytes) / mib })
	for _, s := range rs.samples {
		r.TTFTRunsMS = append(r.TTFTRunsMS, round1(ms(s.TTFT)))
		r.OthersCPU = append(r.OthersCPU, math.Round(s.OthersCPU*1000)/1000)
	}
	return r
}

func round1(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 1, 64), 64)
	return v
}

// evaluate computes the floors and checks the targets:
// (a) unpruned TTFT within 5% of mtmd's; (b) each pruned TTFT within 5% of
// its floor; (c) selection under 1 ms; (d) the image's KV memory N'/576 of
// mtmd's, within 2%.
func evaluate(rows []Row, pruned []prunedRow) ([]Floor, []Target) {
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Config] = r
	}
	base, ok := byName["mtmd"]
	if !ok || base.TTFTMS <= 0 {
		return nil, nil
	}
	var floors []Floor
	var targets []Target
	if none, ok := byName["none"]; ok {
		ratio := none.TTFTMS / base.TTFTMS
		targets = append(targets, Target{
			Name:   "(a) none ttft within 5% of mtmd",
			Detail: fmt.Sprintf("%.0f ms vs %.0f ms: x%.3f", none.TTFTMS, base.TTFTMS, ratio),
			OK:     ratio <= 1.05,
		})
	}
	for _, pr := range pruned {
		name, k := pr.name, pr.keep
		r, ok := byName[name]
		if !ok {
			continue
		}
		if k == 0 {
			k = r.ImageTokens
		}
		f := Floor{Config: name, Keep: k, FloorMS: base.EncodeMS + r.PrefillMS, TTFTMS: r.TTFTMS}
		f.FloorRatio = f.FloorMS / base.TTFTMS
		if f.FloorMS > 0 {
			f.TTFTRatio = r.TTFTMS / f.FloorMS
		}
		floors = append(floors, f)
		targets = append(targets, Target{
			Name:   fmt.Sprintf("(b) %s ttft within 5%% of floor", name),
			Detail: fmt.Sprintf("%.0f ms vs floor %.0f ms: x%.3f", r.TTFTMS, f.FloorMS, f.TTFTRatio),
			OK:     f.TTFTRatio <= 1.05,
		})
		targets = append(targets, Target{
			Name:   fmt.Sprintf("(c) %s select under 1 ms", name),
			Detail: fmt.Sprintf("%.3f ms", r.SelectMS),
			OK:     r.SelectMS < 1,
		})
		if base.KVImageMiB > 0 && base.ImageTokens > 0 {
			// The tokens the row kept: N' itself for LLaVA-1.5, N'/2,880 of
			// the image's tokens for LLaVA-NeXT, the ratio's for Qwen2.5-VL.
			want := float64(r.ImageTokens) / float64(base.ImageTokens)
			got := r.KVImageMiB / base.KVImageMiB
			targets = append(targets, Target{
				Name:   fmt.Sprintf("(d) %s kv proportional to N'", name),
				Detail: fmt.Sprintf("%.2f MiB = %.4f of mtmd's, want %d/%d = %.4f", r.KVImageMiB, got, r.ImageTokens, base.ImageTokens, want),
				OK:     got >= want*0.98 && got <= want*1.02,
			})
		}
	}
	return floors, targets
}

func (rep *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\nmodel %s on %s, %d threads, n_ctx %d, n_batch %d, %d text tokens, %d runs each (medians), peak RSS %.0f MiB\n\n",
		rep.Model, rep.CPU, rep.Threads, rep.NCtx, rep.NBatch, rep.TextTokens, rep.Runs, rep.PeakRSSMiB)
	if rep.Device != "" {
		fmt.Fprintf(w, "GPU: %s\n\n", rep.Device)
	}
	if rep.NoRepack {
		fmt.Fprintf(w, "-no-repack: every weight in ggml's plain CPU buffer\n\n")
	}
	if rep.ImageNote != "" {
		fmt.Fprintf(w, "%s\n\n", rep.ImageNote)
	}
	if len(rep.Rows) > 0 {
		rep.printRows(w)
	} else if rep.EncoderOursMS > 0 {
		rep.printEncoders(w)
	}
	if len(rep.Resend) > 0 {
		fmt.Fprintln(w, "\nturn 2, the conversation resent whole (time to first token):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "config\tturn 1 ms\tturn 2 from scratch ms\tturn 2 reusing ms\tvs turn 1\treused tok\tevaluated tok\tturn-2 encodes\t")
		for _, r := range rep.Resend {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.3f\t%d\t%d\t%d\t\n", r.Config, r.Turn1TTFTMS, r.FreshTTFTMS, r.ReuseTTFTMS,
				r.ReuseTTFTMS/max(r.Turn1TTFTMS, 1e-9), r.ReusedTokens, r.EvaluatedTokens, r.Encodes)
		}
		tw.Flush()
	}
	if rep.OthersCPUMax > noisyShare {
		fmt.Fprintf(w, "\nWARNING: other processes took up to %s of the machine's CPU during timed runs; the figures are noisy.\n",
			pct(rep.OthersCPUMax))
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range rep.Targets {
			fmt.Fprintf(w, "  %-4s %s: %s\n", okStr(t.OK), t.Name, t.Detail)
		}
	}
	fmt.Fprintln(w)
}

// printRows prints the configurations, the encoder comparison and the floors.
func (rep *Report) printRows(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\timage tok\tpreproc ms\tencode ms\tselect ms\tprefill ms\tttft ms\tdecode tok/s\tkv MiB\tttft vs mtmd\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.3f\t%.0f\t%.0f\t%.2f\t%.2f\t%.3f\t\n", r.Config, r.ImageTokens, r.PreprocessMS,
			r.EncodeMS, r.SelectMS, r.PrefillMS, r.TTFTMS, r.DecodeTPS, r.KVImageMiB, r.TTFTRatio)
	}
	tw.Flush()
	rep.printRepack(w)
	rep.printEncoders(w)
	if len(rep.Floors) > 0 {
		fmt.Fprintln(w, "\nfloor = mtmd encode + our prefill of N' image tokens and the text:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "config\tfloor ms\tfloor vs mtmd ttft\tttft ms\tttft vs floor\t")
		for _, f := range rep.Floors {
			fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.0f\t%.3f\t\n", f.Config, f.FloorMS, f.FloorRatio, f.TTFTMS, f.TTFTRatio)
		}
		tw.Flush()
	}
}

// vsOurs is the median of one of our encoder variants' runs and its ratio
// to our encoder's median (zeros, and no runs, when either is missing).
func vsOurs(runs []float64, oursMS float64) (ms, ratio float64, kept []float64) {
	if len(runs) == 0 || oursMS <= 0 {
		return 0, 0, nil
	}
	ms = median(runs)
	return ms, ms / oursMS, runs
}

// printRepack compares none with none-norepack: the LM's quantized
// weights repacked by ggml (GGML_USE_CPU_REPACK) or in its plain buffer.
func (rep *Report) printRepack(w io.Writer) {
	var on, off *Row
	for i := range rep.Rows {
		switch rep.Rows[i].Config {
		case "none":
			on = &rep.Rows[i]
		case plainName:
			off = &rep.Rows[i]
		}
	}
	if on == nil || off == nil || off.PrefillMS <= 0 || off.TTFTMS <= 0 || off.DecodeTPS <= 0 {
		return
	}
	fmt.Fprintf(w, "\nrepacked LM weights (none vs %s, same run): prefill %.0f vs %.0f ms (x%.3f), time to first token %.0f vs %.0f ms (x%.3f), decode %.2f vs %.2f tok/s (x%.3f)\n",
		plainName, on.PrefillMS, off.PrefillMS, on.PrefillMS/off.PrefillMS, on.TTFTMS, off.TTFTMS, on.TTFTMS/off.TTFTMS,
		on.DecodeTPS, off.DecodeTPS, on.DecodeTPS/off.DecodeTPS)
}

func okStr(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// write stores the report as dir/<model>.json.
func (rep *Report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	path := filepath.Join(dir, rep.Model+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	return path, nil
}

// cpuinfo is the first value of key in /proc/cpuinfo ("model name",
// "flags"), false where there is none.
func cpuinfo(key string) (string, bool) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// cpuHasFlag says whether the CPU's flags list flag.
func cpuHasFlag(flag string) bool {
	v, _ := cpuinfo("flags")
	return slices.Contains(strings.Fields(v), flag)
}

// cpuName is the CPU's model name (GOARCH where /proc/cpuinfo has none).
func cpuName() string {
	if v, ok := cpuinfo("model name"); ok {
		return v
	}
	return runtime.GOARCH
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 if unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}

// printEncoders is the encoder comparison's lines.
func (rep *Report) printEncoders(w io.Writer) {
	fmt.Fprintf(w, "\nencoder (%d alternated runs each): ours %.0f ms, llama.cpp clip %.0f ms, ratio %.3f (target <= 1.05: %s)\n",
		rep.EncRuns, rep.EncoderOursMS, rep.EncoderLlamaCppMS, rep.EncoderRatio, okStr(rep.EncoderRatio <= 1.05))
	if rep.EncoderSplitMS > 0 {
		fmt.Fprintf(w, "encoder as HiPrune N' = %d runs it (the last block's MLP and the projector for the kept tokens only): %.0f ms, x%.3f of ours whole (target <= 0.97: %s)\n",
			splitKeep, rep.EncoderSplitMS, rep.EncoderSplitRatio, okStr(rep.EncoderSplitRatio <= 0.97))
	}
	if rep.EncoderQ8MS > 0 {
		amx := "no AMX"
		if rep.CPUAMX {
			amx = "AMX"
		}
		fmt.Fprintf(w, "encoder alone, medians: ours f16 %.0f ms / ours q8_0 %.0f ms (x%.3f) / llama.cpp clip f16 %.0f ms; %s, %s\n",
			rep.EncoderOursMS, rep.EncoderQ8MS, rep.EncoderQ8Ratio, rep.EncoderLlamaCppMS, rep.CPU, amx)
	}
	if rep.EncoderQ4MS > 0 {
		fmt.Fprintf(w, "encoder with q4_0 weights: in %s %.0f ms (x%.3f of f16)", rep.EncoderQ4Buffer, rep.EncoderQ4MS, rep.EncoderQ4Ratio)
		if rep.EncoderQ4PlainMS > 0 {
			fmt.Fprintf(w, " / in the plain CPU buffer, as clip keeps weights, %.0f ms (x%.3f)", rep.EncoderQ4PlainMS, rep.EncoderQ4PlainRatio)
		}
		fmt.Fprintln(w)
	}
	if rep.EncoderOtherFlashMS > 0 {
		onoff := func(b bool) string {
			if b {
				return "on"
			}
			return "off"
		}
		fmt.Fprintf(w, "encoder flash attention: ours %s (auto) %.0f ms / %s %.0f ms (x%.3f; llama.cpp's clip runs it on)\n",
			onoff(rep.EncoderFlashAttn), rep.EncoderOursMS, onoff(!rep.EncoderFlashAttn), rep.EncoderOtherFlashMS, rep.EncoderOtherFlashRatio)
	}
}
