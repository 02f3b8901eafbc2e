"""Build of fastlogit's compiled extension.

Metadata lives in pyproject.toml; this file only declares the extension and
decides, on the build machine, whether OpenMP is available.
"""
import os
import shlex
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
# handling).  -fno-math-errno only lets libm calls inline; errno is unused.
BASE_COMPILE_ARGS = ["-O3", "-fno-math-errno"]
OPENMP_FLAG = "-fopenmp"


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
        depends=["fastlogit/src/fl_math.h", "fastlogit/src/fl_rows.h", "fastlogit/src/fl_pool.h",
                 "fastlogit/_openmp.pxd"],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES),
    cmdclass={"build_ext": BuildExt},
)
