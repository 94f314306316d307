"""bitsandbytes' ``create_dynamic_map`` (``bitsandbytes/functional.py``) in plain Python.

Written from the official function with its defaults (``max_exponent_bits=7``,
``total_bits=8``), in its own variable names and loop order, including its quirk that
``non_sign_bits`` is ``total_bits - 1`` whether or not the map is signed. Values are
float64; bitsandbytes rounds them to float32.
"""

from __future__ import annotations

import itertools


def linspace(start: float, stop: float, num: int) -> list[float]:
    return [start + (stop - start) * k / (num - 1) for k in range(num)]


def create_dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        if signed:
            fraction_items = 2 ** (i + non_sign_bits - max_exponent_bits) + 1
        else:
            fraction_items = 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1
        boundaries = linspace(0.1, 1.0, fraction_items)
        means = [(a + b) / 2.0 for a, b in itertools.pairwise(boundaries)]
        data += [10 ** (-(max_exponent_bits - 1) + i) * m for m in means]
        if signed:
            data += [-(10 ** (-(max_exponent_bits - 1) + i)) * m for m in means]
    assert additional_items == 0  # the defaults leave no extra linear items
    data.append(0.0)
    data.append(1.0)
    assert len(data) == 2**total_bits
    return sorted(data)
