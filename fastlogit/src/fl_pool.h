/* fl_pool.h -- fastlogit's thread pool: the calling thread works too.
 *
 * Why not an OpenMP parallel-for: a fork-join team with a static schedule
 * waits at its barrier for every thread, so on a machine whose cores are busy
 * with other processes one descheduled thread stalls the whole call for a
 * scheduler time slice (a 2-thread call measured 60x slower than 1 thread);
 * and libgomp's threads do not survive fork().
 *
 * How a call runs (fl_pool_run):
 *   1. The caller publishes a job: a task function, its context and a number
 *      of tasks, under a new generation number.
 *   2. The caller itself claims tasks from the job's shared counter and runs
 *      them, as worker 0.  Helper threads that are awake (spinning) or that
 *      wake up in time claim from the same counter, each with its own worker
 *      id in 1 .. n_workers-1.
 *   3. When no task is left to claim, the caller waits only for the tasks
 *      already claimed and not yet finished -- never for a helper that has
 *      not woken up: if no helper shows up, the caller has run every task
 *      itself, as fast as a serial call.
 * The task counter, the generation and the number of workers that joined are
 * packed into one 64-bit atomic word, so a helper that wakes up late (after
 * its job finished) can never claim a task of the next job with a stale task
 * function: its compare-and-swap carries the old generation and fails.
 *
 * Helpers spin a little after each job (a training loop calls again within
 * microseconds), then sleep on a futex (Linux) or a condition variable.
 * Only one caller uses the pool at a time; a concurrent caller (another
 * Python thread) runs its tasks alone, serially: on a machine that already
 * runs several callers, that is what is fastest anyway.
 *
 * Fork: a child process inherits no helper threads.  A pthread_atfork child
 * handler forgets the parent's helpers; the child starts fresh ones on demand.
 *
 * Determinism is the task functions' business: a task must produce the same
 * bits whichever worker runs it and in whatever order tasks run (per-task
 * outputs, combined by the caller in task order afterwards).
 */
#ifndef FL_POOL_H
#define FL_POOL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FL_PAUSE() __asm__ __volatile__("yield")
#else
#define FL_PAUSE() ((void)0)
#endif

/* A task: run task number `task` of the job with context `ctx`, as worker
 * `worker` (0 = the caller; index per-worker scratch with it). */
typedef void (*fl_task_fn)(void *ctx, ptrdiff_t task, int worker);

/* Limits of the packed job word: generation 32 bits | workers joined 10 bits
 * | next task 22 bits.  Kernels group their blocks into at most
 * FL_POOL_MAX_TASKS tasks; at most FL_POOL_MAX_WORKERS workers per job. */
#define FL_POOL_MAX_TASKS ((ptrdiff_t)1 << 22)
#define FL_POOL_MAX_WORKERS 1023
#define FL_TASK_BITS 22
#define FL_JOINED_BITS 10
#define FL_TASK_MASK ((UINT64_C(1) << FL_TASK_BITS) - 1)
#define FL_JOINED_MASK ((UINT64_C(1) << FL_JOINED_BITS) - 1)
#define FL_GEN_SHIFT (FL_TASK_BITS + FL_JOINED_BITS)
#define FL_TASK_OF(s) ((ptrdiff_t)((s) & FL_TASK_MASK))
#define FL_JOINED_OF(s) ((int)(((s) >> FL_TASK_BITS) & FL_JOINED_MASK))
#define FL_GEN_OF(s) ((uint32_t)((s) >> FL_GEN_SHIFT))

/* Back-off on a busy machine.  The caller must wait for every task a helper
 * has started (the task reads the caller's arrays, which may be freed as soon
 * as the call returns), so a helper that the OS deschedules in the middle of
 * a task -- routine when other processes keep the cores busy -- stalls the
 * call for a scheduler time slice (milliseconds); and waking a helper on a
 * full machine makes the scheduler preempt someone, often the caller.  So a
 * job counts as contended when the caller or a helper was descheduled during
 * it for longer than FL_STRAGGLER_MIN_NS and a tenth of its stretch of work
 * (wall time minus thread CPU time: a kernel thread's blip does not count),
 * or the caller waited for a straggler longer than FL_STRAGGLER_MIN_NS and a
 * third of its own working time.  After
 * a contended job the next calls run serially for a back-off period that
 * doubles at each new contended job (FL_BACKOFF_MIN_NS .. FL_BACKOFF_MAX_NS)
 * and shrinks by a quarter after each clean parallel job: on a loaded machine the pool
 * probes for free cores about once a second and otherwise runs at one-thread
 * speed; on an idle one it stays parallel. */
#ifndef FL_STRAGGLER_MIN_NS
#define FL_STRAGGLER_MIN_NS 200000
#endif
#define FL_BACKOFF_MIN_NS 50000000
#define FL_BACKOFF_MAX_NS 1000000000

static int64_t fl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of the calling thread, ns (0 where unknown).  Wall time minus CPU
 * time over a stretch of work is the time the thread was descheduled: a
 * kernel thread's blip costs microseconds, a competing process a time slice. */
static int64_t fl_thread_cpu_ns(void)
{
#if defined(CLOCK_THREAD_CPUTIME_ID)
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
    return 0;
}

/* Descheduled for longer than FL_STRAGGLER_MIN_NS and a tenth of the stretch? */
static int fl_was_descheduled(int64_t wall_ns, int64_t cpu_ns)
{
    int64_t lost = wall_ns - cpu_ns;
    return cpu_ns > 0 && lost > FL_STRAGGLER_MIN_NS && 10 * lost > wall_ns;
}

/* Pause iterations a helper spins for new work before sleeping, and the
 * caller spins for claimed tasks to finish before sleeping (a few tens of
 * microseconds on current x86: long enough to catch the next call of a
 * training loop, short enough not to steal a loaded machine's cores). */
#ifndef FL_POOL_SPIN
#define FL_POOL_SPIN 4000
#endif

typedef struct {
    _Alignas(64) _Atomic uint64_t state;      /* generation | joined | next task */
    _Atomic(fl_task_fn) fn;                   /* the job published under state's generation */
    _Atomic(void *) ctx;
    _Atomic ptrdiff_t n_tasks;
    _Atomic int n_workers;
    _Alignas(64) _Atomic int done;            /* tasks finished in the current job */
    _Atomic int caller_sleeping;
    _Alignas(64) _Atomic int wake_seq;        /* futex word of sleeping helpers */
    _Atomic int n_sleeping;
    _Alignas(64) _Atomic int busy;            /* a caller owns the pool */
    int n_helpers;                            /* started (written by the owner only) */
    _Atomic int preempted;                    /* a helper was preempted in a job */
    int64_t serial_until_ns;                  /* back-off after contention (owner only) */
    int64_t backoff_ns;
    long long n_backoffs;                     /* jobs that saw contention */
    int backoff_disabled;                     /* tests: always use the helpers */
    int forked;                               /* set in a fork child: the helpers are gone */
} fl_pool_t;

static fl_pool_t fl_pool;
static pthread_once_t fl_pool_once = PTHREAD_ONCE_INIT;

#if defined(__linux__)
static void fl_futex_wait(_Atomic int *addr, int expected)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void fl_futex_wake(_Atomic int *addr, int n)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
#else
/* Portable stand-in: one mutex and condition variable for every waiter. */
static pthread_mutex_t fl_wait_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_wait_cond = PTHREAD_COND_INITIALIZER;
static void fl_futex_wait(_Atomic int *addr, int expected)
{
    pthread_mutex_lock(&fl_wait_mutex);
    if (atomic_load(addr) == expected)
        pthread_cond_wait(&fl_wait_cond, &fl_wait_mutex);
    pthread_mutex_unlock(&fl_wait_mutex);
}
static void fl_futex_wake(_Atomic int *addr, int n)
{
    (void)addr; (void)n;
    pthread_mutex_lock(&fl_wait_mutex);
    pthread_cond_broadcast(&fl_wait_cond);
    pthread_mutex_unlock(&fl_wait_mutex);
}
#endif

/* Run claimed tasks of the job of generation `gen` as worker `worker` until
 * none is left; returns when the job has no unclaimed task. */
static void fl_pool_work(uint32_t gen, fl_task_fn fn, void *ctx, ptrdiff_t n_tasks, int worker)
{
    fl_pool_t *p = &fl_pool;
    for (;;) {
        uint64_t s = atomic_load(&p->state);
        if (FL_GEN_OF(s) != gen || FL_TASK_OF(s) >= n_tasks)
            return;
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1))
            continue;
        fn(ctx, FL_TASK_OF(s), worker);
        if (atomic_fetch_add(&p->done, 1) + 1 == n_tasks && atomic_load(&p->caller_sleeping))
            fl_futex_wake(&p->done, 1);
    }
}

/* A helper joins the current job if it has an unclaimed task and a free
 * worker slot: one compare-and-swap takes the slot and the first task. */
static int fl_pool_try_join(void)
{
    fl_pool_t *p = &fl_pool;
    uint64_t s = atomic_load(&p->state);
    for (;;) {
        uint32_t gen = FL_GEN_OF(s);
        /* Read the job, then claim with a CAS on the word read before: if it
         * succeeds the job was still current, so these fields were its own. */
        fl_task_fn fn = atomic_load(&p->fn);
        void *ctx = atomic_load(&p->ctx);
        ptrdiff_t n_tasks = atomic_load(&p->n_tasks);
        int n_workers = atomic_load(&p->n_workers);
        int joined = FL_JOINED_OF(s);
        if (fn == NULL || FL_TASK_OF(s) >= n_tasks || joined + 1 >= n_workers)
            return 0;
        uint64_t claimed = s + 1 + (UINT64_C(1) << FL_TASK_BITS);
        if (atomic_compare_exchange_weak(&p->state, &s, claimed)) {
            ptrdiff_t task = FL_TASK_OF(s);
            int worker = joined + 1;
            int64_t wall0 = fl_now_ns(), cpu0 = fl_thread_cpu_ns();
            fn(ctx, task, worker);
            if (atomic_fetch_add(&p->done, 1) + 1 == n_tasks && atomic_load(&p->caller_sleeping))
                fl_futex_wake(&p->done, 1);
            fl_pool_work(gen, fn, ctx, n_tasks, worker);
            if (fl_was_descheduled(fl_now_ns() - wall0, fl_thread_cpu_ns() - cpu0))
                atomic_store(&p->preempted, 1);
            return 1;
        }
        /* s now holds the current word: look again */
    }
}

static void *fl_pool_helper(void *arg)
{
    fl_pool_t *p = &fl_pool;
    (void)arg;
    for (;;) {
        int spins = 0;
        while (spins < FL_POOL_SPIN) {
            if (fl_pool_try_join())
                spins = 0;
            else {
                FL_PAUSE();
                spins++;
            }
        }
        atomic_fetch_add(&p->n_sleeping, 1);
        int seq = atomic_load(&p->wake_seq);
        if (!fl_pool_try_join())
            fl_futex_wait(&p->wake_seq, seq);
        atomic_fetch_sub(&p->n_sleeping, 1);
    }
    return NULL;
}

/* In a fork child the helpers do not exist: forget them (the memory they
 * used is the child's copy; nothing to free).  The child starts new helpers
 * on its first threaded call. */
static void fl_pool_atfork_child(void)
{
    fl_pool_t *p = &fl_pool;
    atomic_store(&p->state, 0);
    atomic_store(&p->fn, NULL);
    atomic_store(&p->ctx, NULL);
    atomic_store(&p->n_tasks, 0);
    atomic_store(&p->n_workers, 0);
    atomic_store(&p->done, 0);
    atomic_store(&p->caller_sleeping, 0);
    atomic_store(&p->wake_seq, 0);
    atomic_store(&p->n_sleeping, 0);
    atomic_store(&p->busy, 0);
    atomic_store(&p->preempted, 0);
    p->serial_until_ns = 0;                  /* the child tries its own helpers at once */
    p->backoff_ns = 0;
    p->n_helpers = 0;
    p->forked = 1;
}

static void fl_pool_init_once(void)
{
    pthread_atfork(NULL, NULL, fl_pool_atfork_child);
}

/* Start helpers until there are `want` (owner only).  Helpers block every
 * signal: Ctrl-C and friends go to Python's main thread.  A failure to start
 * one is not an error: the caller runs the tasks with fewer workers. */
static void fl_pool_grow(int want)
{
    fl_pool_t *p = &fl_pool;
    if (want > FL_POOL_MAX_WORKERS - 1)
        want = FL_POOL_MAX_WORKERS - 1;
    if (p->n_helpers >= want)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1 << 20);
    while (p->n_helpers < want) {
        pthread_t t;
        if (pthread_create(&t, &attr, fl_pool_helper, NULL) != 0)
            break;
        p->n_helpers++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void fl_pool_serial(fl_task_fn fn, void *ctx, ptrdiff_t n_tasks)
{
    for (ptrdiff_t t = 0; t < n_tasks; t++)
        fn(ctx, t, 0);
}

/* Run tasks 0 .. n_tasks-1 of fn(ctx, task, worker) on up to n_workers
 * threads, the caller included; returns when every task has finished.
 * Worker ids are < n_workers.  Safe to call from several threads at once. */
static void fl_pool_run(fl_task_fn fn, void *ctx, ptrdiff_t n_tasks, int n_workers)
{
    fl_pool_t *p = &fl_pool;
    int expected = 0;
    if (n_tasks <= 0)
        return;
    if (n_workers > n_tasks)
        n_workers = (int)n_tasks;
    if (n_workers > FL_POOL_MAX_WORKERS)
        n_workers = FL_POOL_MAX_WORKERS;
    if (n_workers <= 1 || n_tasks >= FL_POOL_MAX_TASKS     /* the task field must exceed n_tasks */
            || !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        fl_pool_serial(fn, ctx, n_tasks);           /* serial, or the pool is in use */
        return;
    }
    int64_t start = fl_now_ns();
    if (start < p->serial_until_ns && !p->backoff_disabled) {   /* backing off after contention */
        atomic_store(&p->busy, 0);
        fl_pool_serial(fn, ctx, n_tasks);
        return;
    }
    pthread_once(&fl_pool_once, fl_pool_init_once);
    fl_pool_grow(n_workers - 1);
    int64_t cpu0 = fl_thread_cpu_ns(), work_start = fl_now_ns();

    /* Publish: close the word first (the new generation, every task "claimed"),
     * then the job's fields, then open it (no task claimed, no helper joined).
     * Without the close, a helper that had read the previous job's last word
     * (its tasks all claimed) and then this job's fields -- stored while the word
     * still held the previous generation -- found a task "left" (the old count
     * below the new n_tasks) and its compare-and-swap on the unchanged word
     * succeeded: it ran a task of this job that the others ran again, and its
     * count in `done` let the caller return before the last task had finished
     * (seen as a wrong cost_from_logits after a sigmoid, tests/test_threads.py).
     * Closed, the word makes such a helper give up, and any older word fails
     * its compare-and-swap. */
    uint32_t gen = FL_GEN_OF(atomic_load(&p->state)) + 1;
    atomic_store(&p->state, ((uint64_t)gen << FL_GEN_SHIFT) | FL_TASK_MASK);
    atomic_store(&p->done, 0);
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->n_tasks, n_tasks);
    atomic_store(&p->n_workers, n_workers);
    atomic_store(&p->state, (uint64_t)gen << FL_GEN_SHIFT);
    atomic_fetch_add(&p->wake_seq, 1);
    if (atomic_load(&p->n_sleeping) > 0)
        fl_futex_wake(&p->wake_seq, n_workers - 1);

    fl_pool_work(gen, fn, ctx, n_tasks, 0);
    int64_t worked = fl_now_ns();
    int caller_descheduled = fl_was_descheduled(worked - work_start, fl_thread_cpu_ns() - cpu0);

    /* Every task is claimed: wait for those still running elsewhere. */
    for (int spins = 0; atomic_load(&p->done) < n_tasks; spins++) {
        if (spins < FL_POOL_SPIN) {
            FL_PAUSE();
            continue;
        }
        atomic_store(&p->caller_sleeping, 1);
        int d = atomic_load(&p->done);
        if (d < n_tasks)
            fl_futex_wait(&p->done, d);
        atomic_store(&p->caller_sleeping, 0);
    }
    int64_t waited = fl_now_ns() - worked;
    /* A helper's flag may come from the previous job (it sets it after the
     * caller returned): still a sign of a busy machine. */
    int helper_preempted = atomic_exchange(&p->preempted, 0);
    if ((waited > FL_STRAGGLER_MIN_NS && 3 * waited > worked - work_start)
            || caller_descheduled || helper_preempted) {
        p->n_backoffs++;
        p->backoff_ns = p->backoff_ns < FL_BACKOFF_MIN_NS ? FL_BACKOFF_MIN_NS
                      : p->backoff_ns >= FL_BACKOFF_MAX_NS / 2 ? FL_BACKOFF_MAX_NS : 2 * p->backoff_ns;
        p->serial_until_ns = worked + waited + p->backoff_ns;
    } else if (p->backoff_ns > 0) {
        /* Slowly: one clean probe on a busy machine is luck more often than a sign. */
        p->backoff_ns -= p->backoff_ns / 4;
    }
    /* Retire the job so that a helper never reads a dead context. */
    atomic_store(&p->fn, NULL);
    atomic_store(&p->ctx, NULL);
    atomic_store(&p->busy, 0);
}

/* Turn the back-off off (0) or on (1); returns the previous setting.  For
 * tests that must run the helpers whatever the machine's load. */
static int fl_pool_set_backoff(int on)
{
    int was = !fl_pool.backoff_disabled;
    fl_pool.backoff_disabled = !on;
    return was;
}

/* Parallel jobs that saw contention (each one starts a serial back-off). */
static long long fl_pool_backoffs(void) { return fl_pool.n_backoffs; }
/* Helpers started so far (for show-config and tests). */
static int fl_pool_size(void) { return fl_pool.n_helpers; }
/* 1 in a process forked after this module was loaded. */
static int fl_pool_forked(void) { return fl_pool.forked; }

#endif /* FL_POOL_H */
