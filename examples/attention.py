"""Masked scaled dot-product attention with ``fsm.softmax(..., where=mask)``.

A batch of sequences of different lengths is padded to a common number of keys.
Attention must give the padding keys no weight, so the scores are softmaxed
under a key padding mask of shape (batch, 1, keys), which broadcasts over the
queries::

    weights = fsm.softmax(Q @ K^T / sqrt(d), axis=-1, where=mask)
    output  = weights @ V

Masked entries take no part in the max or the sum and come out exactly 0; each
row of weights sums to 1.  (A row whose keys are all masked gives zeros, not
NaN.)  The example checks both properties, compares the weights with the usual
NumPy formula (``np.where(mask, s, -inf)`` followed by the stable softmax) and
times the two.

Run it with::

    python examples/attention.py
"""
import time

import numpy as np

import fastsoftmax as fsm


def numpy_masked_softmax(scores, mask):
    """The hand-written NumPy formula: -inf at the masked keys, then the stable softmax."""
    s = np.where(mask, scores, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def best_time(fn, repeat=20):
    """The best of ``repeat`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(batch=32, queries=128, keys=256, d=64, seed=0, verbose=True):
    """Return a dict with the max |weights - NumPy formula|, the largest padded
    weight, the max |row sum - 1|, the largest weight of an all-masked row, the
    output shape and both timings (seconds)."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((batch, queries, d), dtype=np.float32)
    K = rng.standard_normal((batch, keys, d), dtype=np.float32)
    V = rng.standard_normal((batch, keys, d), dtype=np.float32)

    # Each sequence has its own length (at least 1 key); the rest is padding.
    lengths = rng.integers(1, keys + 1, size=batch)
    mask = np.arange(keys) < lengths[:, None, None]          # (batch, 1, keys)

    scores = Q @ K.transpose(0, 2, 1) / np.float32(np.sqrt(d))   # (batch, queries, keys)
    weights = fsm.softmax(scores, axis=-1, where=mask)
    output = weights @ V                                      # (batch, queries, d)

    padded = ~np.broadcast_to(mask, weights.shape)
    max_padded_weight = float(np.abs(weights[padded]).max()) if padded.any() else 0.0
    max_row_sum_error = float(np.abs(weights.sum(axis=-1, dtype=np.float64) - 1).max())

    reference = numpy_masked_softmax(scores, mask)
    max_difference = float(np.abs(weights - reference).max())

    t_fsm = best_time(lambda: fsm.softmax(scores, axis=-1, where=mask))
    t_numpy = best_time(lambda: numpy_masked_softmax(scores, mask))

    # A sequence with no valid key at all: zeros, where the NumPy formula gives NaN.
    empty_row = fsm.softmax(scores[:1, :1], axis=-1, where=np.zeros((1, 1, keys), dtype=bool))
    all_masked_max = float(np.abs(empty_row).max())           # NaN would propagate

    if verbose:
        print(f"scores {scores.shape} {scores.dtype}, sequence lengths "
              f"{lengths.min()}..{lengths.max()} of {keys} keys; output {output.shape}")
        print(f"padded keys: {int(padded.sum())} weights, largest {max_padded_weight}")
        print(f"rows sum to 1 within {max_row_sum_error:.2e}")
        print(f"a query with every key masked: largest weight {all_masked_max} (no NaN)")
        print(f"max |fsm - NumPy formula| = {max_difference:.2e}")
        print(f"fsm.softmax(where=mask) {t_fsm * 1e3:8.3f} ms")
        print(f"NumPy masked formula    {t_numpy * 1e3:8.3f} ms  "
              f"(NumPy time / fsm time = {t_numpy / t_fsm:.1f})")
    return {
        "max_difference": max_difference,
        "max_padded_weight": max_padded_weight,
        "max_row_sum_error": max_row_sum_error,
        "all_masked_max": all_masked_max,
        "output_shape": output.shape,
        "fsm_seconds": t_fsm,
        "numpy_seconds": t_numpy,
    }


if __name__ == "__main__":
    main()
