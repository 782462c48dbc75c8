"""Build of the fastsoftmax extension: one Cython module over the C kernels in src_c/.

Portable flags only: -O3, never -march=native or -ffast-math (softmax relies on
IEEE inf/NaN semantics).  The AVX2 and AVX-512 variants get their instruction
sets from per-file target pragmas and are chosen at run time.

OpenMP is probed: used when the compiler accepts -fopenmp, otherwise the build
warns and continues single-threaded.  FASTSOFTMAX_SANITIZE=1 builds with
-fsanitize=address,undefined, undefined behaviour aborting (run the tests with
libasan preloaded: see .ci/sanitize).
"""
import os
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

C_SOURCES = [
    "src_c/fsm_dispatch.c",
    "src_c/fsm_isa_generic.c",
    "src_c/fsm_isa_avx2.c",
    "src_c/fsm_isa_avx512.c",
]
BASE_FLAGS = ["-O3", "-fno-math-errno"] if os.name != "nt" else ["/O2"]


def compiler_accepts(compiler, flags):
    """Whether `compiler` compiles and links a small OpenMP program with `flags`."""
    src = textwrap.dedent("""
        #include <omp.h>
        int main(void) { int n = 0;
        #pragma omp parallel reduction(+:n)
          n += 1;
          return omp_get_max_threads() > 0 && n > 0 ? 0 : 1; }
    """)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(src)
        try:
            objs = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        cflags = list(BASE_FLAGS)
        ldflags = []
        omp = ["/openmp"] if self.compiler.compiler_type == "msvc" else ["-fopenmp"]
        if os.environ.get("FASTSOFTMAX_NO_OPENMP") != "1" and compiler_accepts(self.compiler, omp):
            cflags += omp
            ldflags += omp
        else:
            warnings.warn("fastsoftmax: OpenMP not available; building single-threaded")
        if os.environ.get("FASTSOFTMAX_SANITIZE") == "1":
            san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                   "-fno-omit-frame-pointer", "-g"]
            # -O1 (after -O3, so it wins): the instrumented AVX-512 kernels
            # compile in 36 s instead of 107; their vector code is written
            # out, so the same paths are checked.
            cflags += san + ["-O1"]
            ldflags += san
        for ext in self.extensions:
            ext.extra_compile_args = cflags + ext.extra_compile_args
            ext.extra_link_args = ldflags + ext.extra_link_args
            ext.define_macros.append(("FSM_BUILD_FLAGS", '"%s"' % " ".join(cflags)))
        super().build_extensions()


ext = Extension(
    "fastsoftmax._kernels",
    sources=["fastsoftmax/_kernels.pyx"] + C_SOURCES,
    include_dirs=["src_c", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    depends=["src_c/fsm_kernels.h", "src_c/fsm_rows.inc", "src_c/fsm_ml.inc", "src_c/fsm_dd.h",
             "src_c/fsm_half.h", "src_c/fsm_isa_variant.h", "src_c/fsm_template_end.inc"],
)

setup(
    ext_modules=cythonize([ext], compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
