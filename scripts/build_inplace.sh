#!/usr/bin/env bash
# Rebuild the extension in place for development; serialised with a lock so
# that concurrent builds in one checkout never interleave.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/fastlogit-build.lock python setup.py build_ext --inplace -j 2 "$@"
