"""This machine's memory bandwidth, measured the way an optimizer step uses it.

The floor kernel is STREAM-like and runs in place over four float32 arrays: it reads p,
g, m and v and writes p, m and v (28 bytes per parameter, the traffic of an fp32 AdamW
step) with one multiply-add per array, so that only memory limits it. It is C, split
over the cores with OpenMP and compiled with ``gcc -O3 -march=native``. Its median time
gives the bandwidth an in-place elementwise step reaches here, and from it the floor of
every optimizer: the bytes it must move per parameter (read p and g, write p, read and
write each parameter-sized state slot) divided by that bandwidth. For reference the
script also times AdamW itself written in C (the same traffic plus two divisions and a
square root per parameter).

Run from the repository root:

    python benchmarks/bandwidth.py --size 5e7 --repeats 20
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import subprocess
import tempfile

import numpy as np
from common import load_average, median_seconds

KERNEL = r"""
#include <math.h>
#include <stddef.h>
void stream_inplace(float *restrict p, const float *restrict g, float *restrict m,
                    float *restrict v, size_t n, float a, float b) {
  #pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float mi = a * m[i] + g[i];
    float vi = b * v[i] + g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] += a * mi + b * vi;
  }
}
void adamw_inplace(float *restrict p, const float *restrict g, float *restrict m,
                   float *restrict v, size_t n,
                   float lr, float b1, float b2, float eps, float wd, float c1, float c2) {
  #pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float mi = b1 * m[i] + (1.0f - b1) * g[i];
    float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * p[i]);
  }
}
"""
ADAMW_BYTES = 28  # float32: read p, g, m, v; write p, m, v


def compile_kernel() -> ctypes.CDLL:
    """The kernel as a shared library (built once per call, in a temporary directory)."""
    build = pathlib.Path(tempfile.mkdtemp(prefix="optix_bandwidth_"))
    source, library = build / "kernel.c", build / "kernel.so"
    source.write_text(KERNEL)
    flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
    subprocess.run(["gcc", *flags, str(source), "-o", str(library), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    f32 = ctypes.c_float
    lib.adamw_inplace.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_size_t] + [f32] * 7
    lib.stream_inplace.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_size_t] + [f32] * 2
    return lib


def kernel_runners(n: int) -> dict[str, callable]:
    """The two in-place kernels over ``n`` float32 parameters, as no-argument calls."""
    lib = compile_kernel()
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    pointers = [a.ctypes.data for a in (p, g, m, v)]

    def stream():
        # 0.5 keeps the values bounded however many times the kernel runs.
        lib.stream_inplace(*pointers, n, 0.5, 0.25)

    def adamw():
        lib.adamw_inplace(*pointers, n, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 0.1, 0.001)

    stream.arrays = adamw.arrays = (p, g, m, v)  # keep the buffers alive with the runners
    return {"stream": stream, "adamw": adamw}


def measure_bandwidth(n: int = 50_000_000, repeats: int = 20) -> dict[str, float]:
    """Median seconds of both kernels over ``n`` and the bandwidth the STREAM-like one gets."""
    seconds = median_seconds(kernel_runners(n), repeats)
    return {**seconds, "bandwidth": ADAMW_BYTES * n / seconds["stream"]}


def floor_bytes_per_param(state_bytes_per_param: float, param_bytes: int = 4) -> float:
    """Bytes one step must move per parameter: read g and p, write p, read+write the state."""
    return 3 * param_bytes + 2 * state_bytes_per_param


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5e7", help="parameters per step")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n = int(float(args.size))
    print(f"OpenMP threads: {os.environ.get('OMP_NUM_THREADS', os.cpu_count())}; {load_average()}")
    result = measure_bandwidth(n, args.repeats)
    bandwidth = result["bandwidth"]
    print(f"{n:,} float32 parameters, in place, medians of {args.repeats}:")
    print(f"STREAM-like read-4-write-3 kernel: {result['stream'] * 1e3:.2f} ms")
    print(f"AdamW in C: {result['adamw'] * 1e3:.2f} ms ({result['adamw'] / result['stream']:.2f}x)")
    print(f"bandwidth: {bandwidth / 1e9:.1f} GB/s ({ADAMW_BYTES} bytes per parameter)")
    for name, state in [("sgd (no state)", 0), ("momentum / lion", 4), ("adam(w)", 8)]:
        floor = floor_bytes_per_param(state) * n / bandwidth
        print(f"floor of {name}: {floor_bytes_per_param(state):g} B/param, {floor * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
