/* fl_outbuf.h: a bounded cache of large output buffers, as a NumPy memory
 * handler (NEP 49).
 *
 * Why: a fresh output array of 80 MB gets new pages from the kernel, and the
 * kernel zeroes every page on first touch (~5 GB/s here, even with huge pages):
 * sigmoid(z) on 10^7 doubles cost 34 % more than sigmoid(z, out=o).  Batch
 * scoring allocates an output of the same size for every batch and drops the
 * previous one, so the pages of the previous one are the cheapest memory there
 * is.  This handler keeps up to FL_OUTBUF_SLOTS freed buffers (and at most
 * `limit` bytes) and hands them out again; glibc would return them to the
 * kernel (allocations above its 32 MB mmap threshold are unmapped on free).
 *
 * Only arrays that fastlogit allocates for its results use it (the Python layer
 * installs the handler around those np.empty calls only); every other array in
 * the process keeps NumPy's default.  The arrays own their data as usual and
 * are freed into this cache when their last reference goes.
 *
 * Every block carries a header with its true capacity, so a freed block is
 * reused by capacity, never by the size NumPy reports.  The lock is only ever
 * tried, never waited for: on contention (or in a child forked while another
 * thread held it) the call falls back to plain malloc/free, so it cannot
 * deadlock and is always correct; a forked child clears the lock (fl_outbuf_atfork_child).
 */
#ifndef FL_OUTBUF_H
#define FL_OUTBUF_H

#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* NumPy's C API table (PyDataMem_SetHandler): this header is included once, by
 * the _kernels module, which calls fl_outbuf_init() when it loads. */
#include <numpy/arrayobject.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifndef _WIN32
#include <pthread.h>
#endif

#define FL_OUTBUF_SLOTS 8
/* Below this, malloc reuses freed memory itself (heap, not mmap). */
#define FL_OUTBUF_MIN ((size_t)1 << 20)
/* Header before the user's pointer: the block's capacity; 64 bytes keep malloc's alignment. */
#define FL_OUTBUF_HEADER ((size_t)64)

typedef struct { char *base; size_t capacity; uint64_t stamp; } fl_outbuf_slot;

static fl_outbuf_slot fl_outbuf_slots[FL_OUTBUF_SLOTS];
static atomic_flag fl_outbuf_lock = ATOMIC_FLAG_INIT;
static size_t fl_outbuf_limit = 0;      /* bytes; 0 = cache nothing */
static size_t fl_outbuf_held = 0;       /* capacity of the blocks in the slots */
static uint64_t fl_outbuf_clock = 0;
static uint64_t fl_outbuf_hits = 0, fl_outbuf_misses = 0;

static int fl_outbuf_trylock(void) {
    return !atomic_flag_test_and_set_explicit(&fl_outbuf_lock, memory_order_acquire);
}
static void fl_outbuf_unlock(void) {
    atomic_flag_clear_explicit(&fl_outbuf_lock, memory_order_release);
}

static void *fl_outbuf_finish(char *base, size_t capacity) {
    memcpy(base, &capacity, sizeof capacity);
    return base + FL_OUTBUF_HEADER;
}

static char *fl_outbuf_base(void *p) {
    return (char *)p - FL_OUTBUF_HEADER;
}

static size_t fl_outbuf_capacity(void *p) {
    size_t capacity;
    memcpy(&capacity, fl_outbuf_base(p), sizeof capacity);
    return capacity;
}

/* The occupied slot cached longest ago, or -1.  Lock held. */
static int fl_outbuf_oldest(void) {
    int oldest = -1;
    for (int k = 0; k < FL_OUTBUF_SLOTS; k++)
        if (fl_outbuf_slots[k].base
                && (oldest < 0 || fl_outbuf_slots[k].stamp < fl_outbuf_slots[oldest].stamp))
            oldest = k;
    return oldest;
}

/* Empty slot k and return its block.  Lock held. */
static char *fl_outbuf_take(int k) {
    char *base = fl_outbuf_slots[k].base;
    fl_outbuf_held -= fl_outbuf_slots[k].capacity;
    fl_outbuf_slots[k].base = NULL;
    fl_outbuf_slots[k].capacity = 0;
    return base;
}

/* A new block from malloc.  Large ones ask for transparent huge pages, as
 * NumPy's own allocator does: fewer page faults when the pages are first touched. */
static void *fl_outbuf_new(size_t size) {
    if (size > SIZE_MAX - FL_OUTBUF_HEADER) return NULL;
    char *base = (char *)malloc(size + FL_OUTBUF_HEADER);
    if (base == NULL) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size >= ((size_t)4 << 20)) {
        uintptr_t start = ((uintptr_t)base + 4095) & ~(uintptr_t)4095;
        uintptr_t end = (uintptr_t)base + size + FL_OUTBUF_HEADER;
        if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
    }
#endif
    return fl_outbuf_finish(base, size);
}

static void *fl_outbuf_malloc(void *ctx, size_t size) {
    (void)ctx;
    if (size >= FL_OUTBUF_MIN && fl_outbuf_trylock()) {
        /* The smallest cached block that fits and wastes at most an eighth of itself. */
        int best = -1;
        for (int k = 0; k < FL_OUTBUF_SLOTS; k++) {
            size_t cap = fl_outbuf_slots[k].capacity;
            if (fl_outbuf_slots[k].base && cap >= size && cap - size <= cap / 8
                    && (best < 0 || cap < fl_outbuf_slots[best].capacity))
                best = k;
        }
        char *base = NULL;
        size_t cap = 0;
        if (best >= 0) {
            cap = fl_outbuf_slots[best].capacity;
            base = fl_outbuf_take(best);
            fl_outbuf_hits++;
        } else {
            fl_outbuf_misses++;
        }
        fl_outbuf_unlock();
        if (base) return fl_outbuf_finish(base, cap);
    }
    return fl_outbuf_new(size);
}

static void *fl_outbuf_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    if (elsize && nelem > (SIZE_MAX - FL_OUTBUF_HEADER) / elsize) return NULL;
    size_t size = nelem * elsize;
    char *base = (char *)calloc(1, size + FL_OUTBUF_HEADER);   /* zeroed: never from the cache */
    return base ? fl_outbuf_finish(base, size) : NULL;
}

static void *fl_outbuf_realloc(void *ctx, void *p, size_t size) {
    (void)ctx;
    if (p == NULL) return fl_outbuf_malloc(ctx, size);
    if (size > SIZE_MAX - FL_OUTBUF_HEADER) return NULL;
    char *base = (char *)realloc(fl_outbuf_base(p), size + FL_OUTBUF_HEADER);
    return base ? fl_outbuf_finish(base, size) : NULL;
}

static void fl_outbuf_free(void *ctx, void *p, size_t size) {
    (void)ctx; (void)size;          /* the header knows the true capacity */
    if (p == NULL) return;
    char *base = fl_outbuf_base(p);
    size_t cap = fl_outbuf_capacity(p);
    char *evicted[FL_OUTBUF_SLOTS];
    int n_evicted = 0;
    if (cap >= FL_OUTBUF_MIN && fl_outbuf_trylock()) {
        if (cap <= fl_outbuf_limit) {
            /* Drop the least recently cached blocks until this one fits. */
            while (fl_outbuf_held + cap > fl_outbuf_limit)
                evicted[n_evicted++] = fl_outbuf_take(fl_outbuf_oldest());
            int empty = -1;
            for (int k = 0; k < FL_OUTBUF_SLOTS && empty < 0; k++)
                if (!fl_outbuf_slots[k].base) empty = k;
            if (empty < 0) {
                empty = fl_outbuf_oldest();
                evicted[n_evicted++] = fl_outbuf_take(empty);
            }
            fl_outbuf_slots[empty].base = base;
            fl_outbuf_slots[empty].capacity = cap;
            fl_outbuf_slots[empty].stamp = ++fl_outbuf_clock;
            fl_outbuf_held += cap;
            base = NULL;
        }
        fl_outbuf_unlock();
    }
    /* Back to the system outside the lock. */
    for (int k = 0; k < n_evicted; k++) free(evicted[k]);
    if (base) free(base);
}

/* Set the limit (bytes) and drop what no longer fits; returns the old limit.
 * Waits for the lock: called from Python only, never from a handler. */
static size_t fl_outbuf_set_limit(size_t limit) {
    char *evicted[FL_OUTBUF_SLOTS];
    int n_evicted = 0;
    while (!fl_outbuf_trylock()) { }
    size_t old = fl_outbuf_limit;
    fl_outbuf_limit = limit;
    while (fl_outbuf_held > limit)
        evicted[n_evicted++] = fl_outbuf_take(fl_outbuf_oldest());
    fl_outbuf_unlock();
    for (int k = 0; k < n_evicted; k++) free(evicted[k]);
    return old;
}

/* (limit, bytes held, blocks held, hits, misses) */
static void fl_outbuf_stats(size_t *limit, size_t *held, int *blocks, uint64_t *hits,
                            uint64_t *misses) {
    while (!fl_outbuf_trylock()) { }
    int n = 0;
    for (int k = 0; k < FL_OUTBUF_SLOTS; k++) n += fl_outbuf_slots[k].base != NULL;
    *limit = fl_outbuf_limit; *held = fl_outbuf_held; *blocks = n; *hits = fl_outbuf_hits; *misses = fl_outbuf_misses;
    fl_outbuf_unlock();
}

static PyDataMem_Handler fl_outbuf_handler_struct = {
    "fastlogit_output_cache",
    1,
    {NULL, fl_outbuf_malloc, fl_outbuf_calloc, fl_outbuf_realloc, fl_outbuf_free},
};

/* In the child of a fork, only the forking thread exists: if another thread held
 * the lock at the fork, the slots may be half-updated, so the child forgets them
 * (their pages stay the parent's copy-on-write) and starts with an empty cache. */
static void fl_outbuf_atfork_child(void) {
    if (atomic_flag_test_and_set_explicit(&fl_outbuf_lock, memory_order_acquire)) {
        memset(fl_outbuf_slots, 0, sizeof fl_outbuf_slots);
        fl_outbuf_held = 0;
    }
    atomic_flag_clear_explicit(&fl_outbuf_lock, memory_order_release);
}

/* Once, when _kernels loads: NumPy's C API table and the fork handler. */
static int fl_outbuf_init(void) {
#ifndef _WIN32
    pthread_atfork(NULL, NULL, fl_outbuf_atfork_child);
#endif
    return _import_array();       /* -1 with an exception set on failure */
}

/* Install `handler` for this context (thread / task); returns the previous one. */
static PyObject *fl_outbuf_set_handler(PyObject *handler) {
    return PyDataMem_SetHandler(handler);
}

/* A new reference to the handler capsule (NumPy's name for it: "mem_handler"). */
static PyObject *fl_outbuf_handler(void) {
    return PyCapsule_New(&fl_outbuf_handler_struct, "mem_handler", NULL);
}

#endif
