"""Weight averaging and data-wide thresholds: do they close the held-out gap of long codes?

A screen of levers the library does not take (``docs/nested_codes.md``, section "Weight
averaging at other horizons"). One default fit per seed of
``BinaryHashEncoder(n_bits=--bits, nested_bits=--prefixes)`` on the database rows of
``nested.py``'s split; a skorch callback added to the network (by wrapping the encoder's
private ``_make_net``) keeps, after every training step:

- exponential moving averages of the weights (not the buffers) at ``--decays``;
- uniform averages of the weights from a fraction ``--tails`` of the steps on.

After the fit each set of weights is loaded into the module in turn and the batch-norm
running statistics, which set the codes' thresholds (``z > 0`` is ``h > running_mean``), are
recomputed over every training row (a cumulative mean, not the running one of the last
batches); "final + thresholds" is that recomputation on the final weights alone.
recall10@100 (``nested.py``'s protocol) of every prefix on the 2,000 held-out queries, and
of the full code with 2,000 database rows as queries among the others ("seen": ``numpy``
seed 123, as in the section "Held-out queries"); PCA-ITQ at each length in the same run.

Usage::

    python benchmarks/weight_averaging.py --corpus fortunes --seeds 0 1
    python benchmarks/weight_averaging.py --quick      # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)


def averaging_callback(steps, decays, tails):
    """A skorch callback keeping moving and tail averages of the module's weights."""
    import torch
    from skorch.callbacks import Callback

    class WeightAverages(Callback):
        def initialize(self):
            self.n_steps_, self.moving_, self.tail_sums_, self.tail_counts_ = 0, None, {}, {}
            return self

        def on_batch_end(self, net, batch=None, training=False, **kwargs):
            if not training:
                return
            self.n_steps_ += 1
            with torch.no_grad():  # float64: 4,080 small increments must not round away
                weights = {k: p.double().clone() for k, p in net.module_.named_parameters()}
            if self.moving_ is None:
                self.moving_ = {d: {k: w.clone() for k, w in weights.items()} for d in decays}
            else:
                for d in decays:
                    for k, w in weights.items():
                        self.moving_[d][k].mul_(d).add_(w, alpha=1 - d)
            for f in tails:
                if self.n_steps_ <= f * steps:
                    continue
                if f not in self.tail_sums_:
                    self.tail_sums_[f] = {k: w.clone() for k, w in weights.items()}
                    self.tail_counts_[f] = 1
                else:
                    self.tail_counts_[f] += 1
                    for k, w in weights.items():
                        self.tail_sums_[f][k].add_(w)

        def averages(self):
            out = {f"moving average, decay {d}": self.moving_[d] for d in decays}
            for f in tails:
                n = self.tail_counts_[f]
                out[f"uniform over the last {1 - f:.0%} of steps"] = {
                    k: w / n for k, w in self.tail_sums_[f].items()
                }
            return out

    return WeightAverages()


def fit_with_averages(X, seed, bits, prefixes, decays, tails, params):
    """A default nested fit with :func:`averaging_callback` added; (encoder, callback)."""
    from skhash import BinaryHashEncoder

    make_net = BinaryHashEncoder._make_net

    def with_callback(self, seed, scaler, device, steps, *args, **kwargs):
        net = make_net(self, seed, scaler, device, steps, *args, **kwargs)
        net.callbacks.append(("weight_averages", averaging_callback(steps, decays, tails)))
        return net

    enc = BinaryHashEncoder(n_bits=bits, nested_bits=tuple(prefixes), random_state=seed, **params)
    BinaryHashEncoder._make_net = with_callback  # for this fit only
    try:
        enc.fit(X)
    finally:
        BinaryHashEncoder._make_net = make_net
    return enc, dict(enc.net_.callbacks_)["weight_averages"]


def recompute_thresholds(module, X32, batch_size=512):
    """Batch-norm running statistics over every row of ``X32`` (cumulative mean)."""
    import torch

    norm = module.norm
    momentum = norm.momentum
    norm.reset_running_stats()
    norm.momentum = None  # None: a cumulative average over the batches
    module.train()
    with torch.no_grad():
        for start in range(0, len(X32), batch_size):
            module(torch.from_numpy(X32[start : start + batch_size]))
    norm.momentum = momentum
    module.eval()


def codes_of(module, X):
    import torch

    module.eval()
    with torch.no_grad():
        return (module(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))) > 0).numpy()


def held_and_seen(module, Xdb, Xq, true, true_seen, seen, rest, lengths):
    """recall10@100 cells: held-out queries at each length, then seen rows at the full length."""
    cdb, cq = codes_of(module, Xdb), codes_of(module, Xq)
    held = [recall(true, hamming_ranking(cdb[:, :b], cq[:, :b]), 100) for b in lengths]
    seen_recall = recall(true_seen, hamming_ranking(cdb[rest], cdb[seen]), 100)
    return [*(f"{r:.4f}" for r in held), f"{seen_recall:.4f}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="fortunes")
    parser.add_argument("--bits", type=int, default=128)
    parser.add_argument("--prefixes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--decays", type=float, nargs="+", default=[0.995, 0.998, 0.999])
    parser.add_argument("--tails", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-steps", type=int, default=None, help="encoder max_steps")
    quick = dict(bits=32, prefixes=[8, 16], n_database=2000, max_steps=40)
    args = parse_args(parser, quick, argv)
    params = {} if args.max_steps is None else {"max_steps": args.max_steps}

    import torch

    from skhash import PCAITQ

    print(machine_line(), flush=True)
    Xdb, _, Xq, _ = load_split(2000, 0, args.n_database, corpus=args.corpus)
    X32 = np.ascontiguousarray(Xdb, dtype=np.float32)
    true = float_ranking(Xdb, Xq, 10)
    seen = np.random.RandomState(123).choice(len(Xdb), min(2000, len(Xdb) // 2), replace=False)
    rest = np.setdiff1d(np.arange(len(Xdb)), seen)
    true_seen = float_ranking(Xdb[rest], Xdb[seen], 10)
    lengths = [*args.prefixes, args.bits]
    print(f"\n## {args.corpus}: {len(Xdb):,} database rows, {len(Xq):,} queries, recall10@100\n")
    print_header("seed", "weights", *map(str, lengths), f"seen ({args.bits})", "fit s", left=2)
    for seed in args.seeds:
        seconds, (enc, averages) = timed(
            lambda seed=seed: fit_with_averages(
                Xdb, seed, args.bits, args.prefixes, args.decays, args.tails, params
            )
        )
        module = enc.net_.module_
        final = {k: v.detach().clone() for k, v in module.state_dict().items()}

        data = (Xdb, Xq, true, true_seen, seen, rest, lengths)
        print_row(seed, "final (the rule)", *held_and_seen(module, *data), f"{seconds:.0f}")
        recompute_thresholds(module, X32)
        print_row(seed, "final + thresholds from all rows", *held_and_seen(module, *data), "")
        for name, weights in averages.averages().items():
            module.load_state_dict(final)
            with torch.no_grad():
                for key, param in module.named_parameters():
                    param.copy_(weights[key].float())
            recompute_thresholds(module, X32)
            print_row(seed, name, *held_and_seen(module, *data), "")
        itq = []
        for b in lengths:
            model = PCAITQ(n_bits=b, random_state=seed).fit(Xdb)
            ranked = hamming_ranking(model.transform(Xdb), model.transform(Xq))
            itq.append(f"{recall(true, ranked, 100):.4f}")
        print_row(seed, "PCA-ITQ", *itq, "", "")
    print_command()


if __name__ == "__main__":
    main()
