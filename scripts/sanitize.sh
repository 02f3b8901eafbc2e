#!/usr/bin/env bash
# Build fastlogit's extension with AddressSanitizer + UndefinedBehaviorSanitizer
# in a private copy of the repository and run the test suite under it.
#
#   scripts/sanitize.sh                      # copy to /tmp/fastlogit-asan, build, run tests/ (not slow)
#   scripts/sanitize.sh tests/test_input_contract.py -x     # extra args go to pytest
#   FASTLOGIT_ASAN_DIR=/tmp/x scripts/sanitize.sh           # another build directory
#   FASTLOGIT_ASAN_CORPUS=/tmp/fl-fuzz/corpus scripts/sanitize.sh   # also replay a fuzz corpus
#                                        (several directories: separate them with spaces)
#
# Why a private copy: the shared checkout's in-place build must stay a normal
# -O3 build.  Why LD_PRELOAD: CPython itself is not built with ASan, so the
# ASan runtime has to be loaded first for the instrumented extension to work.
# Exit status: non-zero on any sanitizer report (halt_on_error) or test failure.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${FASTLOGIT_ASAN_DIR:-/tmp/fastlogit-asan}"
PYTHON="${PYTHON:-python}"

echo "== copying $SRC to $DEST"
rm -rf "$DEST"
mkdir -p "$DEST"
# Sources only: never the shared tree's build products or git metadata.
tar -C "$SRC" --exclude=./.git --exclude=./build --exclude='*.so' --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=./fastlogit/_kernels.c --exclude=.hypothesis \
    --exclude=.pytest_cache -cf - . | tar -C "$DEST" -xf -

cd "$DEST"
# -O1 keeps stack traces readable; -fno-sanitize-recover makes any UB report fatal.
SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
echo "== building with: $SAN_FLAGS"
FASTLOGIT_EXTRA_CFLAGS="$SAN_FLAGS" nice "$PYTHON" setup.py build_ext --inplace -j 2 > build.log 2>&1 \
    || { tail -50 build.log; exit 1; }
# The instrumented module can only be imported with the ASan runtime preloaded;
# check that it really links the sanitizers:
ldd fastlogit/_kernels*.so | grep -E 'asan|ubsan' || { echo "sanitizers not linked"; exit 1; }

LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
export LD_PRELOAD="$LIBASAN:$LIBUBSAN"
# detect_leaks=0: LeakSanitizer reports CPython's own interned/arena memory at
# exit; leaks are tested with tracemalloc/RSS in tests/test_leaks.py instead.
# allocator_may_return_null=1: a huge request becomes MemoryError, not an abort.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Route Python's small-object allocations through malloc so ASan sees them too.
export PYTHONMALLOC=malloc
export PYTHONFAULTHANDLER=1

echo "== running the test suite under ASan+UBSan (LD_PRELOAD=$LD_PRELOAD)"
if [ "$#" -eq 0 ]; then
    set -- tests -m "not slow"
fi
status=0
nice "$PYTHON" -m pytest -q -p no:cacheprovider "$@" || status=$?

if [ -n "${FASTLOGIT_ASAN_CORPUS:-}" ]; then
    echo "== replaying the fuzz corpus $FASTLOGIT_ASAN_CORPUS under ASan+UBSan"
    # scripts/ is sys.path[0] for a script: put the instrumented package first.
    PYTHONPATH="$DEST" nice "$PYTHON" scripts/fuzz.py --replay $FASTLOGIT_ASAN_CORPUS || status=$?
fi
echo "== sanitizer run finished with status $status"
exit $status
