"""Softmax regression on scikit-learn's handwritten digits, trained with fastsoftmax.

A linear classifier (weights W of shape (64, 10) and a bias b) on the 8x8 digit
images bundled with scikit-learn (``load_digits``: 1797 images, no download).
Each step of plain full-batch gradient descent makes one call::

    loss, grad = fsm.cross_entropy(X @ W + b, y, return_grad=True)

which computes the mean cross-entropy of the logits and its gradient
d loss / d logits = (softmax(logits) - one_hot(y)) / n in one pass over the
rows; the chain rule then gives dW = X.T @ grad and db = grad.sum(0).

Run it with::

    python examples/classifier_digits.py

It prints the loss every 50 steps, the final test accuracy (about 97 %) and
the training time.  Needs scikit-learn (``pip install scikit-learn``).
"""
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastsoftmax as fsm


def main(steps=200, lr=0.5, seed=0, verbose=True):
    """Train and evaluate; return the test accuracy (a float in [0, 1])."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y)

    # Standardize with the training set's statistics (some pixels are always 0).
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    X_train = ((X_train - mean) / std).astype(np.float32)
    X_test = ((X_test - mean) / std).astype(np.float32)

    n_features, n_classes = X_train.shape[1], 10
    W = np.zeros((n_features, n_classes), dtype=np.float32)
    b = np.zeros(n_classes, dtype=np.float32)

    start = time.perf_counter()
    for step in range(1, steps + 1):
        logits = X_train @ W + b
        loss, grad = fsm.cross_entropy(logits, y_train, return_grad=True)
        W -= lr * (X_train.T @ grad)
        b -= lr * grad.sum(axis=0)
        if verbose and step % 50 == 0:
            print(f"step {step:4d}  train loss {float(loss):.4f}")
    train_time = time.perf_counter() - start

    accuracy = float(np.mean((X_test @ W + b).argmax(axis=1) == y_test))
    if verbose:
        print(f"test accuracy {accuracy:.2%} ({len(y_test)} images), "
              f"training time {train_time:.3f} s for {steps} steps")
    return accuracy


if __name__ == "__main__":
    main()
