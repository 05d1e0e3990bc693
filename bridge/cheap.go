package bridge

/*
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// hp_malloc_in_use is the C heap's bytes in use (glibc's mallinfo2
// uordblks plus mapped chunks), or -1 where the C library does not say.
static long long hp_malloc_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	return (long long) (mi.uordblks + mi.hblkhd);
#else
	return -1;
#endif
}
*/
import "C"

// CHeapInUse is how many bytes the process's C allocations (llama.cpp's,
// ggml's, ours) hold now, from glibc's allocator; -1 where the C library
// does not report it. Tests use it to show a server returns to its
// baseline after load.
func CHeapInUse() int64 { return int64(C.hp_malloc_in_use()) }
