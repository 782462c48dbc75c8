#!/usr/bin/env bash
# Builds tests/c/check_kernels.c with the kernels, compiled as setup.py compiles
# them, and runs it on every instruction set this CPU has.
#
#   tests/c/run.sh [--quick] [--isa NAME]   with the C compiler here ($CC, else cc)
#   tests/c/run.sh --arm64 [--quick]         cross-compiled for arm64 (NEON) and
#                                            run under qemu-user; on Debian or Ubuntu:
#                                            apt-get install gcc-aarch64-linux-gnu qemu-user
# $CFLAGS is added to every compile and the link (.ci/sanitize: ASan, UBSan);
# $RUNNER, if set, runs the program: RUNNER="valgrind -q --error-exitcode=3"
# with --isa generic or avx2 (valgrind has no AVX-512).
set -euo pipefail
cd "$(dirname "$0")/../.."

cc=${CC:-cc}
read -r -a runner <<< "${RUNNER:-}"
args=()
for arg in "$@"; do
    case "$arg" in
        --arm64)
            cc=aarch64-linux-gnu-gcc
            runner=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
        *) args+=("$arg") ;;
    esac
done

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
for src in src_c/fsm_dispatch.c src_c/fsm_isa_*.c; do
    "$cc" -O3 -fno-math-errno -fopenmp ${CFLAGS:-} -Isrc_c -c "$src" -o "$build/$(basename "$src" .c).o" &
done
"$cc" -O2 -fopenmp -Wall -Wextra -Werror ${CFLAGS:-} -Isrc_c -c tests/c/check_kernels.c -o "$build/check_kernels.o" &
for job in $(jobs -p); do wait "$job"; done
"$cc" -fopenmp ${CFLAGS:-} "$build"/*.o -lm -o "$build/check_kernels"
echo "tests/c: $("$cc" --version | head -n 1), ${runner[*]:-native}"
"${runner[@]}" "$build/check_kernels" "${args[@]}"
