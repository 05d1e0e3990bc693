//go:build !linux

package bridge

// Backend libraries are loaded at run time on Linux only (darwin's Metal
// backend is compiled in): nothing to route elsewhere.
func routeBackendLogs()       {}
func routeLoadedBackendLogs() {}
