package bridge_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// The encoder's device choice over device lists ggml could register: a
// GPU wherever it sits in the list, an integrated GPU only when there is no
// discrete one, never an accelerator or a CPU, and nothing without UseGPU.
func TestPickDevice(t *testing.T) {
	const (
		cpu   = bridge.DeviceCPU
		gpu   = bridge.DeviceGPU
		igpu  = bridge.DeviceIGPU
		accel = bridge.DeviceAccel
	)
	cases := []struct {
		name  string
		types []bridge.DeviceType
		gpu   bool
		want  int
	}{
		{"no devices", nil, true, -1},
		{"CPU only", []bridge.DeviceType{cpu}, true, -1},
		{"CUDA after the CPU", []bridge.DeviceType{cpu, gpu}, true, 1},
		{"CUDA first (scored backends sort first)", []bridge.DeviceType{gpu, cpu}, true, 0},
		{"two GPUs: the first", []bridge.DeviceType{cpu, gpu, gpu}, true, 1},
		{"integrated GPU", []bridge.DeviceType{cpu, igpu}, true, 1},
		{"discrete GPU over an earlier integrated one", []bridge.DeviceType{igpu, cpu, gpu}, true, 2},
		{"BLAS accelerator is not a GPU", []bridge.DeviceType{accel, cpu}, true, -1},
		{"second CPU backend module", []bridge.DeviceType{cpu, cpu}, true, -1},
		{"unknown device type", []bridge.DeviceType{bridge.DeviceType(42), cpu}, true, -1},
		{"GPU present, not asked for", []bridge.DeviceType{cpu, gpu}, false, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, bridge.PickDevice(tc.types, tc.gpu))
		})
	}
}

// The registry as this process has it: the CPU backend compiled in (and
// whatever backend libraries were found), and an encoder opened with
// UseGPU runs on the device PickDevice names for that list: a registered
// GPU, or the CPU when there is none (the --encoder-gpu fallback).
// HIPRUNE_REQUIRE_GPU=1 requires a GPU (the device run, make backend-check).
func TestEncoderRunsOnPickedDevice(t *testing.T) {
	devs := bridge.Devices()
	require.NotEmpty(t, devs)
	var cpus int
	for i, d := range devs {
		t.Logf("device %d: %s (%s), type %s, backend %s, %d/%d MiB free", i, d.Name, d.Description, d.Type, d.Backend,
			d.MemoryFree>>20, d.MemoryTotal>>20)
		assert.NotEmpty(t, d.Name)
		assert.NotEmpty(t, d.Backend)
		if d.Type == bridge.DeviceCPU {
			cpus++
		}
	}
	assert.Positive(t, cpus, "the CPU backend is compiled in")

	if os.Getenv("HIPRUNE_REQUIRE_GPU") != "" {
		_, ok := bridge.EncoderDevice(true)
		require.True(t, ok, "HIPRUNE_REQUIRE_GPU is set and ggml registers no GPU device")
	}
	_, mm := fixture.Pair(t, "tiny")
	for _, useGPU := range []bool{false, true} {
		enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{UseGPU: useGPU, Threads: 2})
		require.NoError(t, err)
		got, onCPU := enc.Info().Backend, enc.Info().OnCPU
		enc.Close()
		dev, onDevice := bridge.EncoderDevice(useGPU)
		if onDevice {
			assert.Equal(t, dev.Name, got, "UseGPU=%v", useGPU)
			assert.Contains(t, []bridge.DeviceType{bridge.DeviceGPU, bridge.DeviceIGPU}, dev.Type)
			assert.False(t, onCPU, "UseGPU=%v: Info().OnCPU", useGPU)
		} else {
			assert.Equal(t, "CPU", got, "UseGPU=%v: no GPU registered, the encoder stays on the CPU", useGPU)
			assert.True(t, onCPU, "UseGPU=%v: Info().OnCPU", useGPU)
		}
		t.Logf("UseGPU=%v: encoder backend %s", useGPU, got)
	}
}
