# OpenMP entry points that compile with or without -fopenmp: a serial build
# sees stubs (one thread, thread id 0) instead of failing to link.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FL_OPENMP 1
    #else
    #define FL_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    bint FL_OPENMP
    int omp_get_max_threads() noexcept nogil
