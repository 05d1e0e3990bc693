package bridge

/*
#include <stdlib.h>
#include "bridge.h"
#include "ggml-backend.h"

// hp_extra_buft_name is the name of the i-th extra weight buffer type of
// device d (ggml_backend_dev_get_extra_bufts), or NULL past the last.
static const char * hp_extra_buft_name(ggml_backend_dev_t d, int i) {
	ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(d);
	ggml_backend_dev_get_extra_bufts_t fn = reg ?
		(ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts") : NULL;
	ggml_backend_buffer_type_t * p = fn ? fn(d) : NULL;
	for (int j = 0; p && p[j]; j++) {
		if (j == i) return ggml_backend_buft_name(p[j]);
	}
	return NULL;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// DeviceType is the kind of a ggml device (enum ggml_backend_dev_type).
type DeviceType int

const (
	DeviceCPU   DeviceType = C.GGML_BACKEND_DEVICE_TYPE_CPU
	DeviceGPU   DeviceType = C.GGML_BACKEND_DEVICE_TYPE_GPU
	DeviceIGPU  DeviceType = C.GGML_BACKEND_DEVICE_TYPE_IGPU  // integrated GPU, host memory
	DeviceAccel DeviceType = C.GGML_BACKEND_DEVICE_TYPE_ACCEL // runs some ops beside the CPU (BLAS, ...)
)

func (t DeviceType) String() string {
	switch t {
	case DeviceCPU:
		return "CPU"
	case DeviceGPU:
		return "GPU"
	case DeviceIGPU:
		return "IGPU"
	case DeviceAccel:
		return "ACCEL"
	}
	return fmt.Sprintf("DeviceType(%d)", int(t))
}

// Device is one device of ggml's backend registry.
type Device struct {
	Name        string // "CPU", "CUDA0", ...
	Description string // the processor's or the GPU's model name
	Backend     string // the backend that registered it: "CPU", "CUDA", ...
	Type        DeviceType
	// MemoryFree and MemoryTotal are what the backend reports, in bytes.
	MemoryFree, MemoryTotal uint64
	// ExtraBuffers are the device's extra weight buffer types, in ggml's
	// order of preference: for the CPU, the layouts its faster kernels read
	// ("AMX" where the build targets AMX, "CPU_REPACK" where it has ggml's
	// repacked layouts, GGML_USE_CPU_REPACK); quantized weights that one of
	// them takes go there (EncoderParams.NoRepack, ModelParams.NoRepack).
	ExtraBuffers []string
}

// Devices lists the devices ggml has registered, in registry order: the CPU
// backend compiled into the binary, and those of the backend libraries Init
// loaded (libggml-cuda.so and others, from OLLAMA_LIBRARY_PATH or
// ../lib/ollama beside the executable; see third_party/README.md).
func Devices() []Device {
	Init()
	n := int(C.ggml_backend_dev_count())
	devs := make([]Device, 0, n)
	for i := 0; i < n; i++ {
		d := C.ggml_backend_dev_get(C.size_t(i))
		var free, total C.size_t
		C.ggml_backend_dev_memory(d, &free, &total)
		devs = append(devs, Device{
			Name:        C.GoString(C.ggml_backend_dev_name(d)),
			Description: C.GoString(C.ggml_backend_dev_description(d)),
			Backend:     C.GoString(C.ggml_backend_reg_name(C.ggml_backend_dev_backend_reg(d))),
			Type:        DeviceType(C.ggml_backend_dev_type(d)),
			MemoryFree:  uint64(free),
			MemoryTotal: uint64(total),
		})
		for j := 0; ; j++ {
			name := C.hp_extra_buft_name(d, C.int(j))
			if name == nil {
				break
			}
			devs[i].ExtraBuffers = append(devs[i].ExtraBuffers, C.GoString(name))
		}
	}
	return devs
}

// CPUExtraBuffers is the CPU device's ExtraBuffers: empty where the build
// has neither AMX nor ggml's repacked layouts.
func CPUExtraBuffers() []string {
	for _, d := range Devices() {
		if d.Type == DeviceCPU {
			return d.ExtraBuffers
		}
	}
	return nil
}

// PickDevice returns the index in types of the device the encoder runs on
// (EncoderParams.UseGPU = useGPU) when ggml has registered devices of those
// types in that order, or -1 for the CPU backend. It is the C++ encoder's
// own choice (hp_pick_device): the first GPU, else the first integrated GPU,
// and only with useGPU.
func PickDevice(types []DeviceType, useGPU bool) int {
	if len(types) == 0 {
		return -1
	}
	ct := make([]C.int, len(types))
	for i, t := range types {
		ct[i] = C.int(t)
	}
	gpu := C.int(0)
	if useGPU {
		gpu = 1
	}
	return int(C.hp_pick_device((*C.int)(unsafe.Pointer(&ct[0])), C.int(len(ct)), gpu))
}

// EncoderDevice is the registered device an encoder opened with useGPU runs
// on, and false when that is the CPU backend.
func EncoderDevice(useGPU bool) (Device, bool) {
	devs := Devices()
	types := make([]DeviceType, len(devs))
	for i, d := range devs {
		types[i] = d.Type
	}
	if i := PickDevice(types, useGPU); i >= 0 {
		return devs[i], true
	}
	return Device{}, false
}
