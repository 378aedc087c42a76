"""How do exact and approximate Hamming search scale with database size and code length? (issue 5)

For 10^4 to 10^6 clustered codes of 64, 256 and 1024 bits: skhash ``"brute"``
against faiss ``IndexBinaryFlat`` (exact; as many queries as cost about
2 * 10^9 bit comparisons), and skhash ``"nndescent"`` against faiss
``IndexBinaryHNSW`` M=32 at the lowest search breadth of ``--scaling-ef``
reaching distance-recall@10 0.95. From ``--isolate-from`` codes on, each
approximate method runs in a fresh process limited to ``--budget`` seconds.
Results accumulate in ``--scaling-json`` (keyed by codes and bits), so
configurations can be measured in separate runs and plotted together; the
table and the figure (``docs/figures/neighbors_scaling.png``) close the output.

Usage::

    python benchmarks/neighbors_scaling.py --wait-idle 600 --scaling-json scaling.json
    python benchmarks/neighbors_scaling.py --plot-only --scaling-json scaling.json
    python benchmarks/neighbors_scaling.py --quick            # smoke run, figure in /tmp
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _hamming_knn import (
    TARGET_RECALL,
    Data,
    add_data_arguments,
    bench_faiss_flat,
    bench_faiss_hnsw,
    bench_skhash,
    data_options,
    lowest_reaching,
    make_codes,
    run_methods,
)
from _harness import (
    Disturbance,
    machine_line,
    machine_title,
    parse_args,
    print_command,
    wait_idle,
)

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "neighbors_scaling.png"
# Seconds a child process may spend compiling (numba) on top of its budget:
# pynndescent compiles about 40 s in every fresh process.
COMPILE_ALLOWANCE = 90


def scaling_data(n, n_bits, args):
    """Codes and exact distances of one configuration, cached on disk."""
    kind = "uniform" if args.uniform else "clustered"
    path = Path(tempfile.gettempdir()) / f"skhash_scaling_{kind}_{n}x{n_bits}_q{args.queries}.npz"
    if path.exists():
        saved = np.load(path)
        if saved["true_distances"].shape[1] < args.k:
            raise ValueError(f"{path} holds fewer than k={args.k} exact distances; delete it.")
        return Data(saved["database"], saved["queries"], n_bits, args.k, args.threads,
                    saved["true_distances"][:, : args.k])  # fmt: skip
    database, queries = make_codes(n, n_bits, args.queries, uniform=args.uniform)
    database, queries = np.packbits(database, axis=1), np.packbits(queries, axis=1)
    data = Data(database, queries, n_bits, args.k, args.threads)
    partial_file = path.with_suffix(".tmp.npz")
    np.savez(partial_file, database=database, queries=queries, true_distances=data.true_distances)
    os.replace(partial_file, path)
    return data


def approximate(method, data, args):
    """Rows of one approximate method swept over ``--scaling-ef``."""
    if method == "nndescent":
        return bench_skhash("nndescent", data, args, args.scaling_ef, default_row=False)
    return bench_faiss_hnsw(data, args, args.scaling_ef)


def run_child(method, n, n_bits, args):
    """Rows of ``approximate`` in a fresh process within the budget, else None."""
    sub = argparse.Namespace(**{**vars(args), "n": n, "bits": n_bits})
    command = [sys.executable, __file__, "--child", method] + data_options(sub)
    command += ["--scaling-ef"] + [str(ef) for ef in args.scaling_ef]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    try:
        output = subprocess.run(
            command, env=env, check=True, capture_output=True, text=True,
            timeout=args.budget + COMPILE_ALLOWANCE,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    return json.loads(output.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def scaling_config(n, n_bits, args):
    """Scaling results for one (codes, bits) configuration."""
    data = scaling_data(n, n_bits, args)
    n_exact = max(50, min(args.queries, int(2e9 / (n * n_bits))))
    exact = data.subset(n_exact)
    result = dict(n=n, bits=n_bits, exact_queries=n_exact, queries=len(data.queries))
    result["budget"] = args.budget
    result["brute"], result["flat"] = run_methods(
        [partial(bench_skhash, "brute", exact, args), partial(bench_faiss_flat, exact, args)],
        args,
        verbose=False,
    )
    for method in ("nndescent", "hnsw"):
        if args.wait_idle:
            wait_idle(args.wait_idle)
        with Disturbance() as disturbance:
            if n >= args.isolate_from:
                rows, wall = run_child(method, n, n_bits, args)
            else:
                rows = approximate(method, data, args)
        if rows is None:
            result[method] = dict(timeout=wall, others=disturbance.share)
            continue
        best = lowest_reaching(rows)
        best["others"] = disturbance.share
        best["sweep"] = [(row["ef"], row["qps"], row["recall"]) for row in rows]
        result[method] = best
    return result


def _row(r):
    def approx(m):
        if "timeout" in m:
            return f"> {r['budget']:.0f} s budget: not finished | – | – | –"
        mark = "" if m["recall"] >= TARGET_RECALL else " (best; < 0.95)"
        return f"{m['build_s']:.1f} | {m['ef']}{mark} | {m['qps']:,.0f} | {m['recall']:.3f}"

    others = max(r[m]["others"] for m in ("brute", "flat", "nndescent", "hnsw"))
    nnd, hnsw = r["nndescent"], r["hnsw"]
    ratios = "– | –"
    if "timeout" not in nnd and "timeout" not in hnsw:
        ratios = f"{nnd['qps'] / hnsw['qps']:.2f} | {nnd['build_s'] / hnsw['build_s']:.2f}"
    return (
        f"| {r['n']:,} | {r['bits']} | {r['brute']['qps']:,.0f} | {r['flat']['qps']:,.0f} | "
        f"{r['brute']['qps'] / r['flat']['qps']:.2f} | {approx(nnd)} | {approx(hnsw)} | "
        f"{ratios} | {others:.0%} |"
    )


def scaling_table(results):
    head = (
        "| codes | bits | skhash brute QPS | faiss flat QPS | brute / flat "
        "| nndescent build (s) | ef_search | nndescent QPS | recall "
        "| HNSW build (s) | efSearch | HNSW QPS | recall "
        "| nndescent / HNSW QPS | nndescent / HNSW build | others' CPU (max) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    ordered = sorted(results.values(), key=lambda r: (r["bits"], r["n"]))
    return "\n".join([head] + [_row(r) for r in ordered])


STYLES = {
    "brute": ("skhash brute (exact)", "C0", "-", "o"),
    "flat": ("faiss IndexBinaryFlat (exact)", "C1", "-", "s"),
    "nndescent": ("skhash nndescent, lowest ef_search with recall >= 0.95", "C0", "--", "^"),
    "hnsw": ("faiss IndexBinaryHNSW M=32, lowest efSearch with recall >= 0.95", "C1", "--", "v"),
}


def scaling_figure(results, path, threads):
    """QPS (top) and approximate build time (bottom) by size, one column per code length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = sorted({r["bits"] for r in results.values()})
    fig, axes = plt.subplots(2, len(bits), figsize=(4.2 * len(bits), 7.6), squeeze=False)
    for col, b in enumerate(bits):
        rs = sorted((r for r in results.values() if r["bits"] == b), key=lambda r: r["n"])
        top, bottom = axes[0, col], axes[1, col]
        for key, (label, colour, line, marker) in STYLES.items():
            done = [r for r in rs if "timeout" not in r[key]]
            n = [r["n"] for r in done]
            style = dict(color=colour, marker=marker)
            top.plot(n, [r[key]["qps"] for r in done], line, label=label * (col == 0), **style)
            if key not in ("nndescent", "hnsw"):
                continue
            bottom.plot(n, [r[key]["build_s"] for r in done], line, **style)
            for r in (r for r in rs if "timeout" in r[key]):
                # not finished within the budget: an open marker at the budget
                bottom.plot([r["n"]], [r["budget"]], markerfacecolor="none", **style)
                bottom.annotate(
                    f"> {r['budget']:.0f} s, unfinished", (r["n"], r["budget"]),
                    textcoords="offset points", xytext=(-4, 6), fontsize=7, color=colour,
                    ha="right",
                )  # fmt: skip
        top.set_title(f"{b}-bit codes")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("database codes")
            ax.grid(True, which="both", alpha=0.3)
        top.set_ylabel("queries / s (k=10, batch)")
        bottom.set_ylabel("index build (s, warm)")
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"Hamming k-NN on clustered codes: {machine_title(threads)}")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--scaling-n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scaling-bits", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument(
        "--scaling-ef",
        type=int,
        nargs="+",
        default=[10, 16, 32, 64, 128],
        help="ef sweep; the lowest reaching recall 0.95 is reported",
    )
    parser.add_argument(
        "--scaling-json",
        default=str(Path(tempfile.gettempdir()) / "skhash_neighbors_scaling.json"),
        help="results file, merged across runs",
    )
    parser.add_argument("--plot-only", action="store_true", help="redraw from --scaling-json")
    parser.add_argument("--figure", default=str(FIGURE), help="figure file")
    parser.add_argument(
        "--budget",
        type=float,
        default=600,
        metavar="SECONDS",
        help="time limit of one approximate method at one configuration (build and sweep, "
        "in a child process, from --isolate-from codes on)",
    )
    parser.add_argument("--isolate-from", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["nndescent", "hnsw"], help=argparse.SUPPRESS)
    quick_json = str(Path(tempfile.gettempdir()) / "skhash_neighbors_scaling_quick.json")
    quick_figure = str(Path(tempfile.gettempdir()) / "skhash_neighbors_scaling_quick.png")
    quick = dict(
        scaling_n=[2_000, 4_000], scaling_bits=[64], queries=100, scaling_ef=[10, 32],
        isolate_from=4_000, budget=60, scaling_json=quick_json, figure=quick_figure,
    )  # fmt: skip
    args = parse_args(parser, quick, argv)
    if args.fortunes or args.embeddings:  # options shared with the other scripts
        parser.error("--fortunes and --embeddings do not apply: this script makes its own codes")

    import numba

    numba.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(approximate(args.child, scaling_data(args.n, args.bits, args), args)))
        return
    results_file = Path(args.scaling_json)
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if not args.plot_only:
        print(machine_line(args.threads, extra=("faiss-cpu", "matplotlib")), flush=True)
        for n_bits in args.scaling_bits:
            for n in args.scaling_n:
                result = scaling_config(n, n_bits, args)
                print(f"  {json.dumps(result)}", flush=True)
                results[f"{n}x{n_bits}"] = result
                results_file.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {results_file}\n")
    print(scaling_table(results))
    scaling_figure(results, Path(args.figure), args.threads)
    print_command()


if __name__ == "__main__":
    main()
