"""Build of fastlogit's compiled extension.

Metadata lives in pyproject.toml; this file only declares the extension and
decides, on the build machine, whether OpenMP is available.
"""
import atexit
import glob
import os
import shlex
import shutil
import sys
import tempfile

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Cython directives, set once for every module.
COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

# Portable by default: no -march, no -ffast-math (it would break inf/NaN
# handling).  -fno-math-errno only lets libm calls inline (fma() becomes one
# instruction in the AVX2 and AVX-512 clones); errno is unused.
# -ffp-contract=off: the compiler never fuses a*b + c into one FMA on its own
# (GCC does by default wherever the target has FMA), so the baseline, AVX2 and
# AVX-512 clones round every operation alike and give the same bits; the FMAs
# the algorithms want are written as fma() in src/fl_math.h.
BASE_COMPILE_ARGS = ["-O3", "-fno-math-errno", "-ffp-contract=off"]
OPENMP_FLAG = "-fopenmp"
# Release builds carry no debug information: -g0 overrides the -g of Python's
# own CFLAGS and -s strips the symbol table at link time (4.5 MB -> 0.8 MB).
# FASTLOGIT_DEBUG=1, `build_ext --debug` or a -g in FASTLOGIT_EXTRA_CFLAGS keep both.
RELEASE_COMPILE_ARGS = ["-g0"]
RELEASE_LINK_ARGS = ["-s"] if sys.platform.startswith("linux") else []

# Cython writes the C file under build/ (setuptools wants a relative path),
# not next to the .pyx.  Building a wheel, an sdist or the metadata (pip
# install ., python -m build) leaves the source tree as it found it:
# setuptools' build folder and the egg-info go to a temporary folder, and the
# build/ folder is removed again if this build created it.
CYTHON_DIR = os.path.join("build", "cython")
PACKAGING_COMMANDS = {"bdist_wheel", "sdist", "egg_info", "dist_info"}
if PACKAGING_COMMANDS & set(sys.argv[1:]):
    SCRATCH = tempfile.mkdtemp(prefix="fastlogit-build-")
    atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
    if not os.path.exists("build"):
        atexit.register(shutil.rmtree, "build", ignore_errors=True)
    COMMAND_OPTIONS = {"build": {"build_base": os.path.join(SCRATCH, "build")},
                       "egg_info": {"egg_base": SCRATCH}}
else:  # development builds (build_ext --inplace) keep build/ for reuse
    COMMAND_OPTIONS = {}


def _compiler_accepts_openmp(compiler):
    """Compile and link a tiny OpenMP program with the build's compiler."""
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "check_openmp.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=[OPENMP_FLAG])
            compiler.link_executable(objects, os.path.join(tmp, "check_openmp"),
                                     extra_postargs=[OPENMP_FLAG])
        except Exception:  # any compile or link failure means: no OpenMP
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        extra = shlex.split(os.environ.get("FASTLOGIT_EXTRA_CFLAGS", ""))
        compile_args = list(BASE_COMPILE_ARGS)
        link_args = []
        if os.environ.get("FASTLOGIT_NATIVE") == "1":   # opt-in, never for wheels
            compile_args.append("-march=native")
        debug = (self.debug or os.environ.get("FASTLOGIT_DEBUG") == "1"
                 or any(flag.startswith("-g") and flag != "-g0" for flag in extra))
        if not debug and self.compiler.compiler_type == "unix":
            compile_args += RELEASE_COMPILE_ARGS
            link_args += RELEASE_LINK_ARGS
        if os.environ.get("FASTLOGIT_NO_OPENMP") != "1" and _compiler_accepts_openmp(self.compiler):
            compile_args.append(OPENMP_FLAG)
            link_args.append(OPENMP_FLAG)
        else:
            sys.stderr.write("fastlogit: building without OpenMP: fastlogit's own thread pool still runs; "
                             "the default thread count comes from OMP_NUM_THREADS or the cores\n")
        compile_args += extra
        link_args += extra
        flags = " ".join(compile_args)
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
            ext.define_macros += [
                ("FL_BUILD_CFLAGS", '"%s"' % flags),
                ("FL_BUILD_CYTHON", '"%s"' % Cython.__version__),
                ("FL_BUILD_NUMPY", '"%s"' % numpy.__version__),
            ]
        super().build_extensions()


extensions = [
    Extension(
        "fastlogit._kernels",
        ["fastlogit/_kernels.pyx"],
        include_dirs=["fastlogit/src", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
        # Every C header and included .pxi: a change to any of them rebuilds.
        depends=sorted(glob.glob("fastlogit/src/*.h") + glob.glob("fastlogit/_kernels_*.pxi"))
        + ["fastlogit/_openmp.pxd"],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES,
                          build_dir=CYTHON_DIR),
    cmdclass={"build_ext": BuildExt},
    options=COMMAND_OPTIONS,
)
