package main

import (
	"os"
	"strconv"
	"strings"
)

// cpuSnap is a reading of the machine's and this process's CPU time, in
// clock ticks, to tell how much CPU other processes took during a run: on
// a machine with as many threads as cores, any of it slows llama.cpp's
// spinning thread barriers far more than its share.
type cpuSnap struct {
	busy, total, self uint64
	ok                bool
}

func readCPU() cpuSnap {
	var s cpuSnap
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return s
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if i+1 < len(f) {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
	}
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	s.total = s.busy + v[3] + v[4]
	b, err = os.ReadFile("/proc/self/stat")
	if err != nil {
		return s
	}
	// The command name may hold spaces; fields restart after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s
	}
	g := strings.Fields(string(b[i+1:]))
	if len(g) < 13 { // state is field 3; utime and stime are fields 14, 15
		return s
	}
	ut, _ := strconv.ParseUint(g[11], 10, 64)
	st, _ := strconv.ParseUint(g[12], 10, 64)
	s.self = ut + st
	s.ok = true
	return s
}

// othersShare is the fraction of the machine's CPU time between a and b
// used by other processes (and stolen by the hypervisor); -1 if unknown.
func othersShare(a, b cpuSnap) float64 {
	if !a.ok || !b.ok || b.total <= a.total {
		return -1
	}
	busy := int64(b.busy-a.busy) - int64(b.self-a.self)
	return max(0, float64(busy)/float64(b.total-a.total))
}
