"""Tune RDMReg's weight with GridSearchCV, and check the winner converged.

A ``Pipeline`` of :class:`~skhash.BinaryHashEncoder` (fitted with the labels,
so the label-centroid term is on) and :class:`~skhash.HammingKNeighborsClassifier` (a
k-nearest-neighbour vote in Hamming distance) is an ordinary scikit-learn
classifier, so :class:`~sklearn.model_selection.GridSearchCV` tunes it on
scikit-learn's digits. Each fold is scored twice from the same fits: kNN
accuracy, and mAP@100 of the codes as a retrieval index
(:func:`skhash.metrics.make_retrieval_scorer` applied to the encoder step).

The figure shows both scores against ``reg_weight``, and the training curves of
the refitted best encoder from its ``history_``, drawn with
:mod:`skhash.plotting`.

    python examples/plot_grid_search.py [figure.png]   # under a minute on 2 cores
    SKHASH_FAST=1 python examples/plot_grid_search.py   # a few seconds, for the tests
"""

import argparse
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from skhash import BinaryHashEncoder, HammingKNeighborsClassifier
from skhash.metrics import make_retrieval_scorer
from skhash.plotting import plot_code_histograms, plot_training_curves

FAST = bool(os.environ.get("SKHASH_FAST"))
REG_WEIGHTS = [0.1, 1.0] if FAST else [0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
N_SPLITS = 2 if FAST else 3
ENCODER = (
    dict(n_bits=16, hidden_layer_sizes=(32,), max_epochs=2)
    if FAST
    else dict(n_bits=32, max_epochs=20)
)

retrieval_map = make_retrieval_scorer("map", k=100)


def codes_map(pipeline, X, y):
    """mAP@100 of the pipeline's codes: the retrieval scorer on the encoder step."""
    return retrieval_map(pipeline[:-1], X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "figure",
        nargs="?",
        type=Path,
        default=Path(__file__).parent / "figures" / "plot_grid_search.png",
    )
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    if FAST:
        X, y = X[:600], y[:600]
    pipeline = Pipeline(
        [
            ("encoder", BinaryHashEncoder(random_state=0, **ENCODER)),
            ("knn", HammingKNeighborsClassifier(n_neighbors=5)),
        ]
    )
    search = GridSearchCV(
        pipeline,
        {"encoder__reg_weight": REG_WEIGHTS},
        scoring={"accuracy": "accuracy", "mAP@100": codes_map},
        refit="accuracy",
        cv=StratifiedKFold(N_SPLITS, shuffle=True, random_state=0),
    )
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start

    results = search.cv_results_
    print(f"{'reg_weight':>10}  {'accuracy':>15}  {'mAP@100':>15}")
    for i, weight in enumerate(REG_WEIGHTS):
        print(
            f"{weight:>10g}  "
            f"{results['mean_test_accuracy'][i]:.3f} ± {results['std_test_accuracy'][i]:.3f}  "
            f"{results['mean_test_mAP@100'][i]:.3f} ± {results['std_test_mAP@100'][i]:.3f}"
        )
    best = search.best_params_["encoder__reg_weight"]
    print(
        f"best reg_weight by accuracy: {best:g}  "
        f"({len(REG_WEIGHTS) * N_SPLITS + 1} fits, {seconds:.0f} s)"
    )

    fig, axes = plt.subplot_mosaic(
        [["score", "score", "hist"], ["loss", "vertex", "bits"]],
        figsize=(13, 7),
        layout="constrained",
    )
    ax = axes["score"]
    positions = np.arange(len(REG_WEIGHTS))  # reg_weight=0 has no place on a log axis
    for key, marker in (("accuracy", "o"), ("mAP@100", "s")):
        mean, std = results[f"mean_test_{key}"], results[f"std_test_{key}"]
        ax.errorbar(
            positions,
            mean,
            yerr=std,
            marker=marker,
            capsize=3,
            label=f"{key} ({N_SPLITS}-fold mean ± std)",
        )
    ax.axvline(REG_WEIGHTS.index(best), color="grey", linestyle=":", label="best (accuracy)")
    ax.set_xticks(positions, [f"{w:g}" for w in REG_WEIGHTS])
    ax.set(
        xlabel="reg_weight (weight of RDMReg)",
        ylabel="score",
        title=f"GridSearchCV on digits, {ENCODER['n_bits']}-bit supervised codes",
    )
    ax.legend(fontsize="small")

    encoder = search.best_estimator_.named_steps["encoder"]
    plot_code_histograms(encoder, ax=axes["hist"])
    axes["hist"].set_title(f"Refitted best (reg_weight={best:g}):\ncode values per epoch")
    plot_training_curves(encoder, axes=[axes["loss"], axes["vertex"], axes["bits"]])

    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=80)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
