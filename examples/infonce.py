"""The InfoNCE contrastive loss (SimCLR, CLIP) with ``fsm.cross_entropy``.

A batch of B items is seen through two "views" (here: the same base vector plus
independent noise), embedded and L2-normalized: z1[i] and z2[i] are a positive
pair, every z2[j] with j != i is a negative for z1[i].  With the similarity
matrix S = z1 @ z2.T, InfoNCE is the cross-entropy of each row of S / T against
the label of its diagonal entry::

    labels = np.arange(B)
    loss_12 = fsm.cross_entropy(S, labels, temperature=0.07)           # z1 -> z2 (rows)
    loss_21 = fsm.cross_entropy(S, labels, axis=0, temperature=0.07)   # z2 -> z1 (columns)
    loss = (loss_12 + loss_21) / 2                                      # the symmetric loss

``axis=0`` takes the softmax down the columns, i.e. the loss of S.T, without
transposing.  The example compares the loss with a NumPy formula, then takes a
few gradient steps on the embeddings with ``return_grad=True`` (d loss / d S,
chained through the matrix product and the normalization) and shows the loss
go down.

Run it with::

    python examples/infonce.py
"""
import numpy as np

import fastsoftmax as fsm

TEMPERATURE = 0.07


def normalize(u):
    """Each row divided by its L2 norm."""
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def make_views(batch=256, dim=128, noise=1.0, seed=0):
    """Two noisy views (unnormalized embeddings) of the same random batch."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((batch, dim), dtype=np.float32)
    u1 = base + noise * rng.standard_normal((batch, dim), dtype=np.float32)
    u2 = base + noise * rng.standard_normal((batch, dim), dtype=np.float32)
    return u1, u2


def infonce_numpy(S, temperature=TEMPERATURE):
    """The symmetric InfoNCE loss written out in NumPy (float64): -mean log p of
    the diagonal, with the softmax over the rows and over the columns."""
    logits = np.asarray(S, dtype=np.float64) / temperature

    def diagonal_nll(z):
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -np.mean(np.diag(log_p))

    return (diagonal_nll(logits) + diagonal_nll(logits.T)) / 2


def infonce(S, temperature=TEMPERATURE):
    """The symmetric InfoNCE loss of S and its gradient d loss / d S."""
    labels = np.arange(S.shape[0])
    loss_12, grad_12 = fsm.cross_entropy(S, labels, temperature=temperature, return_grad=True)
    loss_21, grad_21 = fsm.cross_entropy(S, labels, axis=0, temperature=temperature,
                                         return_grad=True)
    return (loss_12 + loss_21) / 2, (grad_12 + grad_21) / 2


def main(steps=5, lr=50.0, verbose=True):
    """Return a dict with the loss, the NumPy formula's loss, their relative
    difference, the losses along the gradient steps, and S and d loss / d S of
    the first step (for checking against other libraries)."""
    u1, u2 = make_views()
    z1, z2 = normalize(u1), normalize(u2)
    S = z1 @ z2.T
    loss, grad_S = infonce(S)
    loss_numpy = infonce_numpy(S)
    rel_diff = abs(float(loss) - loss_numpy) / abs(loss_numpy)
    if verbose:
        print(f"B = {S.shape[0]} pairs, dim {u1.shape[1]}, temperature {TEMPERATURE}")
        print(f"symmetric InfoNCE loss: fastsoftmax {float(loss):.7f} ({S.dtype}), "
              f"NumPy formula {loss_numpy:.7f} (float64), relative difference {rel_diff:.1e}")

    # Gradient descent on the unnormalized embeddings u: S = z1 @ z2.T gives
    # dL/dz1 = G @ z2 and dL/dz2 = G.T @ z1; z = u / |u| gives
    # dL/du = (dL/dz - z * <z, dL/dz>) / |u|, row by row.  The loss is a mean
    # over the B pairs, so each row's gradient is small: hence the large lr.
    losses = []
    for _ in range(steps + 1):
        z1, z2 = normalize(u1), normalize(u2)
        step_loss, G = infonce(z1 @ z2.T)
        losses.append(float(step_loss))
        for u, z, dz in ((u1, z1, G @ z2), (u2, z2, G.T @ z1)):
            du = (dz - z * np.sum(z * dz, axis=1, keepdims=True)) / np.linalg.norm(
                u, axis=1, keepdims=True)
            u -= lr * du
    if verbose:
        print(f"loss along {steps} gradient steps (lr {lr}): "
              + " -> ".join(f"{x:.4f}" for x in losses))
    return {
        "loss": float(loss),
        "loss_numpy": float(loss_numpy),
        "relative_difference": rel_diff,
        "losses": losses,
        "S": S,
        "grad_S": grad_S,
    }


if __name__ == "__main__":
    main()
