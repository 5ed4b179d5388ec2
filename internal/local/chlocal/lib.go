package chlocal

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// chdb is the slice of libchdb's C API that running a server needs, bound with purego so the
// packetlake binary stays cgo-free and only loads the 566 MB engine when it actually serves.
type chdb struct {
	setSignalHandlersEnabled func(enabled int32)
	queryCmdline             func(argc int32, argv unsafe.Pointer) unsafe.Pointer
	resultError              func(res unsafe.Pointer) string
	resultBuffer             func(res unsafe.Pointer) unsafe.Pointer
	resultLength             func(res unsafe.Pointer) uintptr
	destroyResult            func(res unsafe.Pointer)
	version                  func() string

	// libc's allocator: argv must live in C memory, which the Go GC neither moves nor frees
	// and which the engine may keep referring to for as long as it runs.
	malloc func(size uintptr) unsafe.Pointer
	free   func(p unsafe.Pointer)
}

var (
	loadOnce sync.Once
	loaded   *chdb
	loadErr  error
)

// loadChdb dlopens libchdb.so once per process (a second dlopen of other path would load a
// second copy of the engine's globals) and turns ClickHouse's own signal handlers off before
// anything else runs, so that SIGINT/SIGTERM and the Go runtime's signals keep reaching Go.
func loadChdb(path string) (*chdb, error) {
	loadOnce.Do(func() {
		libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			loadErr = fmt.Errorf("dlopen libc: %w", err)
			return
		}
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			loadErr = fmt.Errorf("dlopen %s (if the file is damaged: rm -rf %s and retry): %w", path, path, err)
			return
		}
		c := &chdb{}
		purego.RegisterLibFunc(&c.malloc, libc, "malloc")
		purego.RegisterLibFunc(&c.free, libc, "free")
		purego.RegisterLibFunc(&c.setSignalHandlersEnabled, h, "chdb_set_signal_handlers_enabled")
		purego.RegisterLibFunc(&c.queryCmdline, h, "chdb_query_cmdline")
		purego.RegisterLibFunc(&c.resultError, h, "chdb_result_error")
		purego.RegisterLibFunc(&c.resultBuffer, h, "chdb_result_buffer")
		purego.RegisterLibFunc(&c.resultLength, h, "chdb_result_length")
		purego.RegisterLibFunc(&c.destroyResult, h, "chdb_destroy_query_result")
		purego.RegisterLibFunc(&c.version, h, "chdb_version")
		c.setSignalHandlersEnabled(0)
		loaded = c
	})
	if loadErr == nil && loaded == nil {
		return nil, fmt.Errorf("libchdb already failed to load in this process")
	}
	return loaded, loadErr
}

// cArgv is a C array of C strings; free releases it once the engine has returned.
type cArgv struct {
	c    *chdb
	ptrs []unsafe.Pointer
	argv unsafe.Pointer
}

func (c *chdb) newArgv(args []string) *cArgv {
	a := &cArgv{c: c}
	a.argv = c.malloc(uintptr(len(args)+1) * unsafe.Sizeof(uintptr(0)))
	slots := unsafe.Slice((*unsafe.Pointer)(a.argv), len(args)+1)
	for i, s := range args {
		p := c.malloc(uintptr(len(s) + 1))
		b := unsafe.Slice((*byte)(p), len(s)+1)
		copy(b, s)
		b[len(s)] = 0
		slots[i] = p
		a.ptrs = append(a.ptrs, p)
	}
	slots[len(args)] = nil
	return a
}

func (a *cArgv) free() {
	for _, p := range a.ptrs {
		a.c.free(p)
	}
	a.c.free(a.argv)
}

// runCmdline runs clickhouse-local with args and blocks until its last statement finishes,
// returning the engine's error text (empty on success) and any output it buffered.
func (c *chdb) runCmdline(args []string) (errText string, output string) {
	argv := c.newArgv(args)
	defer argv.free()
	res := c.queryCmdline(int32(len(args)), argv.argv)
	if res == nil {
		return "chdb_query_cmdline returned no result", ""
	}
	defer c.destroyResult(res)
	if n := c.resultLength(res); n > 0 {
		if buf := c.resultBuffer(res); buf != nil {
			output = string(unsafe.Slice((*byte)(buf), n))
		}
	}
	return c.resultError(res), output
}
