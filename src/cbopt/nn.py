"""Train torch modules without gradients: particles of flattened weights, or zeroth-order estimates.

:func:`train` runs one loop (epochs of shuffled mini-batches, an evaluation after every epoch, the best
network kept) around one of three kinds of update:

* a particle method of the registry (``"cbo"``, ``"cbo-memory"``, ``"ch"``, ...): every particle is a
  flattened weight vector, the whole swarm is evaluated on the mini-batch in one call
  (``torch.func.functional_call`` under ``vmap``, :func:`particle_loss`), and the method's kernels move it.
  α and σ are cooled after every epoch (:class:`Cooling`). The network after an epoch is the swarm's
  consensus point;
* a zeroth-order estimator (``"zo-gaussian"``, ``"zo-spsa"``, ``"zo-cge"``, ``"zo-rank"``): the weights are
  perturbed in place (:class:`cbopt.zo.ModuleEstimator`) and a ``torch.optim`` optimizer takes the step;
* ``"backprop"``: the gradient baseline, ``loss.backward()`` and the same optimizer.

The mini-batches are the SGD-like ingredient: each step sees a fresh batch of data, and the consensus
of a swarm evaluated on it behaves like a stochastic (implicit) gradient step (arXiv:2306.09778).

Default particle hyper-parameters (``NN_DEFAULTS``): N = 100 particles, Δt = 0.1, λ = 1, anisotropic
σ = √0.4, α = 50 (×2 per epoch), σ × log2(e + 1)/log2(e + 2) per epoch, random particle batches of 10,
and the Brownian ``kick`` when the consensus stalls; particles start as N(0, 1) weights. The network
is evaluated in ``eval()`` mode (dropout off; batch-norm uses its running statistics, which particles do
not update: prefer layer or group norm).

>>> import torch, cbopt.nn
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(256, 2, generator=g); y = (X[:, 0] * X[:, 1] > 0).long()          # XOR-like labels
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
>>> res = cbopt.nn.train(model, (X, y), method="ch", epochs=20, rng=0, progress=False)
>>> bool(res.accuracy > 0.9), res.reason, res.nfev                  # 20 epochs x 13 batches x 100 particles
(True, 'EPOCHS', 26000)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import as_generator, to_numpy, torch_device
from ._extras import require
from .driver import ObjectiveError, Run, callback_stops
from .minimize import prepare
from .progress import Progress
from .result import OptimizeResult
from .stopping import Status, Stop, as_stop, keeps_only

#: particle-method defaults for networks (user options override them)
NN_DEFAULTS: dict[str, dict[str, Any]] = {
    "cbo": dict(n_particles=100, dt=0.1, lam=1.0, sigma=math.sqrt(0.4), alpha=50.0, batch_size=10, kick=1e-5),
    "cbo-memory": dict(n_particles=100, dt=0.1, lam=1.0, sigma=math.sqrt(0.4), alpha=50.0, kick=1e-5,
                       reevaluate=True),
    "ch": dict(n_particles=100, sigma=0.1, alpha=50.0),
    "ch-adam": dict(n_particles=100, sigma=0.2, lr=0.01),
}


@dataclass(frozen=True)
class Cooling:
    """Per-epoch cooling of a particle method: ``α <- min(α·alpha, alpha_max)``; ``σ <- σ·log2(e+1)/log2(e+2)``
    after epoch ``e`` (``sigma="log"``) or ``σ <- σ·sigma`` (a number); ``lr <- lr·lr`` for a method with a
    step size (``ch-adam``)."""

    alpha: float = 2.0
    sigma: str | float = "log"
    alpha_max: float = 1e15
    lr: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and self.alpha > 0 and math.isfinite(self.alpha)):
            raise ValueError(f"Cooling.alpha: must be a finite number > 0, got {self.alpha!r}")
        if not (isinstance(self.alpha_max, (int, float)) and self.alpha_max > 0):
            raise ValueError(f"Cooling.alpha_max: must be a number > 0, got {self.alpha_max!r}")
        if self.sigma != "log" and not (isinstance(self.sigma, (int, float)) and self.sigma > 0):
            raise ValueError(f"Cooling.sigma: expected 'log' or a number > 0, got {self.sigma!r}")
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 1):
            raise ValueError(f"Cooling.lr: must be a number in (0, 1], got {self.lr!r}")

    def apply(self, state: Any, epoch: int) -> Any:
        """The state after epoch ``epoch`` (1, 2, ...) with α and σ cooled (fields it lacks are skipped)."""
        new = {}
        if "alpha" in state._fields:
            new["alpha"] = (state.alpha * self.alpha).clip(0, self.alpha_max)
        if "sigma" in state._fields:
            f = math.log2(epoch + 1) / math.log2(epoch + 2) if self.sigma == "log" else float(self.sigma)
            new["sigma"] = state.sigma * f
        if "lr" in state._fields and self.lr != 1.0:
            new["lr"] = state.lr * self.lr
        return state._replace(**new)


#: the per-epoch cooling a method gets when ``train`` is not given one (the others: ``Cooling()``): ch-adam
#: sets α from the effective sample size at every step and keeps σ and its step size (on digits, halving
#: the step size every 25 epochs gave the same test accuracy over 5 seeds; σ's log cooling lost 1.4 points, 1 seed)
NN_COOLING: dict[str, Cooling | None] = {"ch-adam": None}
_COOLING = Cooling()  # train's default: the method's entry of NN_COOLING, else this


class FlatParams:
    """The trainable parameters of a module as one vector: names, shapes and offsets."""

    def __init__(self, model: Any):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model: no parameter requires grad; nothing to train")
        dtypes = {p.dtype for _, p in named}
        devices = {p.device for _, p in named}
        if len(dtypes) > 1 or len(devices) > 1:
            raise ValueError(f"model: every trainable parameter must share one dtype and device, got "
                             f"{sorted(map(str, dtypes))} on {sorted(map(str, devices))}")
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.dim = sum(self.sizes)
        self.dtype, self.device = named[0][1].dtype, named[0][1].device

    def vector(self, model: Any) -> Any:
        """The module's current weights, flattened (d,)."""
        torch = sys.modules["torch"]
        params = dict(model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, v: Any) -> dict[str, Any]:
        """Views of ``v`` (..., d) shaped like the parameters (a batch of weight sets when ``v`` is 2-D)."""
        out, o = {}, 0
        lead = tuple(v.shape[:-1])
        for n, s, k in zip(self.names, self.shapes, self.sizes, strict=True):
            out[n] = v[..., o:o + k].reshape(lead + s)
            o += k
        return out

    def load(self, model: Any, v: Any) -> Any:
        """Copy the weights ``v`` (d,) into ``model`` (in place) and return it."""
        torch = sys.modules["torch"]
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, w in self.unflatten(v).items():
                params[n].copy_(w)
        return model


def particle_loss(model: Any, loss: Callable[[Any, Any], Any] | None = None, chunk_size: int | None = None
                  ) -> Callable[[Any, Any, Any], Any]:
    """``f(W, inputs, targets) -> losses``: the loss of every weight vector ``W[..., d]`` on one batch.

    All weight sets are evaluated in one vectorised call (``torch.func.functional_call`` under
    ``vmap``; ``chunk_size`` bounds the memory by evaluating that many at a time). ``loss(outputs,
    targets)`` returns the mean loss (default: cross-entropy). Buffers are shared; the module runs in
    ``eval()`` mode, without autograd.
    """
    torch = require("torch", "cbopt.nn")
    from torch.func import functional_call, vmap

    flat = FlatParams(model)
    loss = loss if loss is not None else torch.nn.functional.cross_entropy
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def one(w: Any, inputs: Any, targets: Any) -> Any:
        return loss(functional_call(model, ({**flat.unflatten(w), **frozen}, buffers), (inputs,)), targets)

    batched = vmap(one, in_dims=(0, None, None), chunk_size=chunk_size)

    def f(W: Any, inputs: Any, targets: Any) -> Any:
        if W.shape[-1] != flat.dim:
            raise ValueError(f"weights: expected last axis {flat.dim} (the model's trainable parameters), "
                             f"got shape {tuple(W.shape)}")
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = batched(W.reshape(-1, flat.dim), inputs, targets)
        finally:
            model.train(was)
        return out.reshape(W.shape[:-1])

    return f


def objective(model: Any, inputs: Any, targets: Any, loss: Callable[[Any, Any], Any] | None = None,
              chunk_size: int | None = None) -> Callable[[Any], Any]:
    """A batched objective ``f(W[..., d])`` for :func:`cbopt.minimize`: the loss on fixed data (full batch).

    >>> import torch, cbopt, cbopt.nn
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> f = cbopt.nn.objective(model, torch.ones(4, 1), 3 * torch.ones(4, 1), torch.nn.functional.mse_loss)
    >>> w0 = torch.zeros(1)
    >>> res = cbopt.minimize(f, x0=w0, rng=0, max_evals=2000)
    >>> round(float(res.x[0]), 3)
    3.0
    """
    f = particle_loss(model, loss, chunk_size)
    return lambda W: f(W, inputs, targets)


# -- the training loop ----------------------------------------------------------------------------------


def _batches(data: Any, batch_size: int, gen: np.random.Generator) -> Iterable[tuple[Any, Any]]:
    if isinstance(data, tuple) and len(data) == 2:
        inputs, targets = data
        perm = sys.modules["torch"].as_tensor(gen.permutation(len(inputs)), device=inputs.device)
        for s in range(0, len(inputs), batch_size):
            idx = perm[s:s + batch_size]
            yield inputs[idx], targets[idx]
    else:  # an iterable of (inputs, targets) batches, e.g. a DataLoader (its own shuffling)
        torch, empty = sys.modules["torch"], True
        for batch in data:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and
                    all(isinstance(t, torch.Tensor) for t in batch)):
                raise TypeError(f"data: each batch must be a pair (inputs, targets) of tensors, got "
                                f"{type(batch).__name__}")
            empty = False
            yield batch[0], batch[1]
        if empty:
            raise ValueError("data: the iterable yielded no batches")


def _training_device(backend: Any) -> Any:
    """``backend=`` of :func:`train` as a torch device: a device name, a torch.device or ``cbopt.Torch``."""
    from ._backend import Torch

    if isinstance(backend, Torch):
        backend = backend.device if backend.device is not None else "cpu"
    if isinstance(backend, str) and backend in ("numpy", "torch"):
        raise ValueError(f"backend={backend!r}: networks train on torch; give a device ('cpu', 'cuda')")
    return torch_device(backend)


def _check_data(name: str, data: Any, device: Any, dtype: Any) -> Any:
    torch = sys.modules["torch"]
    if data is None:
        return None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, (torch.Tensor, np.ndarray))
                                                                   for t in data):
        inputs, targets = (torch.as_tensor(t) for t in data)  # numpy arrays: the tensors they hold
        if inputs.is_floating_point() and inputs.dtype != dtype:
            inputs = inputs.to(dtype)  # float64 arrays for a float32 network
        if targets.is_floating_point() and targets.dtype != dtype:
            targets = targets.to(dtype)
        if len(inputs) != len(targets):
            raise ValueError(f"{name}: {len(inputs)} inputs but {len(targets)} targets")
        if len(inputs) == 0:
            raise ValueError(f"{name}: no samples")
        return inputs.to(device), targets.to(device)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, torch.Tensor)):
        if iter(data) is data:  # a generator is used up by the first epoch (or evaluation)
            raise TypeError(f"{name}: a one-pass iterator ({type(data).__name__}); pass something that can be "
                            "iterated once per epoch: a list of batches or a DataLoader")
        return data
    raise TypeError(f"{name}: expected a tuple (inputs, targets) of tensors (or numpy arrays) or an iterable of "
                    f"such batches, got {type(data).__name__}")


def _evaluate(model: Any, flat: FlatParams, w: Any, data: Any, loss: Callable, batch: int
              ) -> tuple[float, Any, int]:
    """Mean loss, accuracy (None when the task is not classification) and samples of weights ``w`` on ``data``."""
    torch = sys.modules["torch"]
    from torch.func import functional_call

    # the weights w, and what the module keeps beside them: buffers (BatchNorm's running statistics) and frozen
    # parameters, as they are in the module
    params = {**dict(model.named_buffers()),
              **{k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}, **flat.unflatten(w)}
    total, correct, n = 0.0, 0, 0
    classify = True
    chunks = ((data[0][s:s + batch], data[1][s:s + batch]) for s in range(0, len(data[0]), batch)) \
        if isinstance(data, tuple) else data
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for xb, yb in chunks:
                xb, yb = xb.to(w.device), yb.to(w.device)
                out = functional_call(model, params, (xb,), strict=True)
                total += float(loss(out, yb)) * len(xb)
                n += len(xb)
                classify = classify and out.ndim == 2 and yb.ndim == 1 and not yb.is_floating_point()
                if classify:
                    correct += int((out.argmax(-1) == yb).sum())
    finally:
        model.train(was)
    if n == 0:
        raise ValueError("evaluation data yielded no samples")
    return total / n, (correct / n if classify else None), n


def _default_optimizer(method: str) -> Callable[[Any], Any]:
    torch = sys.modules["torch"]
    return lambda params: (torch.optim.Adam if method == "backprop" else torch.optim.SGD)(params, lr=1e-3)


class _Stopped(Exception):
    """The particle method stopped by one of its rules (e.g. every loss non-finite)."""

    def __init__(self, status: Status):
        super().__init__(status.name)
        self.status = status


def train(
    model: Any,
    data: Any,
    *,
    method: str = "cbo",
    loss: Callable[[Any, Any], Any] | None = None,
    epochs: int = 100,
    batch_size: int = 20,
    options: dict[str, Any] | None = None,
    cooling: Cooling | None = _COOLING,
    init: Any = 1.0,
    optimizer: Callable[[Any], Any] | None = None,
    test_data: Any = None,
    val_data: Any = None,
    rng: Any = None,
    backend: Any = None,
    stop: Stop | None = None,
    device: Any = None,
    max_time: float | None = None,
    progress: bool | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    chunk_size: int | None = None,
    eval_batch_size: int = 4096,
) -> OptimizeResult:
    """Train ``model`` on ``data`` with a particle method, a zeroth-order estimator or backprop.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged; the result holds a trained copy.
    data : (inputs, targets) tensors, or an iterable of such batches (e.g. a DataLoader)
        Tensors are shuffled every epoch with ``rng`` and cut into batches of ``batch_size``.
    method : str
        A particle method of the registry (``"cbo"``, ``"ch-adam"``, ``"cbo-memory"``, ``"ch"``, ...), a zeroth-order
        method (``"zo-gaussian"``, ``"zo-spsa"``, ``"zo-cge"``, ``"zo-rank"``) or ``"backprop"``.
    loss : callable
        ``loss(outputs, targets) -> scalar`` (mean over the batch); default cross-entropy.
    epochs, batch_size : passes over the data and the mini-batch size (one step per batch).
    options : dict
        Particle methods: the method's options over :data:`NN_DEFAULTS`. Zeroth-order methods:
        ``mu`` and ``n_directions`` of :class:`cbopt.zo.ModuleEstimator`.
    cooling : Cooling or None
        Per-epoch cooling of particle methods' α, σ and step size (None: off); by default the method's
        entry of :data:`NN_COOLING`, else ``Cooling()``.
    init : float, "reset" or tensor (N, d)
        Particle methods: initial weights ``N(0, init^2)`` per coordinate (default 1.0), ``"reset"``
        (each particle a fresh ``reset_parameters()`` of the layers, seeded from ``rng``; the global torch
        RNG is restored afterwards), or the particles themselves. Other methods start from ``model``.
    optimizer : callable
        ``optimizer(params) -> torch.optim.Optimizer`` for zeroth-order methods (default SGD, lr 1e-3)
        and backprop (default Adam, lr 1e-3).
    test_data, val_data : (inputs, targets)
        Reported after every epoch. The network returned is the epoch's network (the consensus point
        for particle methods) with the lowest loss on ``val_data``, or on the whole training data when
        ``val_data`` is not given; ``test_data`` never selects.
    rng : int or numpy Generator
        Seeds everything: the particles, their noise, the batch order, the perturbations.
    backend : "cpu", "cuda", "cuda:1", a torch.device or ``cbopt.Torch(device)``
        Where to train, as for :func:`cbopt.minimize` (default: the model's device).
    stop : cbopt.Stop
        Budgets besides ``epochs``: ``max_time`` (seconds, checked after every step) and ``max_evals``
        (weight vectors evaluated, ``res.nfev``; never exceeded: training stops before a step would). Other rules
        are refused.
    device, max_time : deprecated spellings of ``backend=`` and ``stop=cbopt.Stop(max_time=...)``.
    progress : bool or None
        A progress bar with loss/accuracy per epoch (tqdm when installed, else one line per epoch on
        stderr); None: only when stderr is a terminal.
    callback : callable
        ``callback(record)`` after every epoch (the history row as a dict); return True (or raise
        StopIteration) to stop.

    Returns
    -------
    OptimizeResult
        ``model`` (the selected network, weights loaded), ``x`` (its flat weights), ``fun`` (its training
        or validation loss), ``accuracy`` (same data), ``test_loss``/``test_accuracy``, ``best_epoch``,
        ``history`` (dict of per-epoch lists), ``nfev`` (weight vectors evaluated on a mini-batch),
        ``forward_samples`` (examples forwarded by the training steps), ``backward_samples`` (backprop),
        ``eval_samples`` (forwarded by the per-epoch evaluations), ``time``, ``reason``.
    """
    torch = require("torch", "cbopt.nn")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                    ("chunk_size", 1 if chunk_size is None else chunk_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: must be an integer >= 1{' or None' if name == 'chunk_size' else ''}, "
                             f"got {v!r}")
    if not isinstance(method, str):
        raise TypeError(f"method: expected a name ('cbo', 'zo-spsa', 'backprop', ...), got {method!r}")
    rules = keeps_only(as_stop(stop), ("max_time", "max_evals"), "nn.train")
    if device is not None:
        if backend is not None:
            raise ValueError("give backend= (device= is its old spelling), not both")
        warnings.warn("nn.train(device=...) is now backend=...", DeprecationWarning, stacklevel=2)
        backend = device
    if max_time is not None:
        warnings.warn("nn.train(max_time=...) is now stop=cbopt.Stop(max_time=...)", DeprecationWarning,
                      stacklevel=2)
        rules = rules.with_flat(max_time=max_time)
    max_time = rules.max_time
    if cooling is _COOLING:  # not given: the method's own
        cooling = NN_COOLING.get(method, cooling)
    if cooling is not None and not isinstance(cooling, Cooling):
        raise TypeError(f"cooling: expected a cbopt.nn.Cooling or None, got {cooling!r}")
    net = copy.deepcopy(model)
    if backend is not None:
        net = net.to(_training_device(backend))
    flat = FlatParams(net)
    device = flat.device
    data = _check_data("data", data, device, flat.dtype)
    test_data = _check_data("test_data", test_data, device, flat.dtype)
    val_data = _check_data("val_data", val_data, device, flat.dtype)
    loss = loss if loss is not None else torch.nn.functional.cross_entropy
    gen = as_generator(rng)
    data_gen, init_gen, step_gen = (np.random.default_rng(s) for s in gen.integers(0, 2**63 - 1, size=3))

    if method == "backprop" or method.startswith("zo-"):
        stepper: _Stepper = _GradientStepper(net, flat, method, loss, options, optimizer, step_gen)
    else:
        stepper = _ParticleStepper(net, flat, method, loss, options, cooling, init, step_gen, init_gen, chunk_size)

    select = val_data if val_data is not None else data
    history: dict[str, list[Any]] = {}
    best: dict[str, Any] = {"loss": math.inf, "w": None, "epoch": 0, "acc": None}
    shown = sys.stderr.isatty() if progress is None else bool(progress)
    bar = Progress(total=epochs, unit="epoch", desc=method) if shown else None
    t0 = time.perf_counter()
    reason, eval_samples, error = Status.EPOCHS, 0, None
    try:
        for epoch in range(1, epochs + 1):
            steps0 = getattr(stepper, "steps", None)  # a gradient stepper counts its steps (a swarm stops itself)
            nonfinite0 = stepper.nonfinite() if steps0 is not None else 0
            reason, error = _one_epoch(stepper, data, batch_size, data_gen, device, t0, max_time, rules.max_evals)
            if reason not in (Status.EPOCHS, Status.MAX_TIME, Status.MAX_EVALS):  # the loss raised, or the
                break  # swarm stopped itself
            stepper.end_epoch(epoch)
            w = stepper.weights()
            if not bool(torch.isfinite(w).all()):
                reason = Status.DIVERGED
                break
            row, k = _epoch_row(net, flat, w, select, test_data, loss, eval_batch_size, stepper, epoch, t0)
            eval_samples += k
            for key, v in row.items():
                history.setdefault(key, []).append(v)
            if steps0 is not None and stepper.nonfinite() - nonfinite0 == getattr(stepper, "steps", 0) - steps0 > 0:
                reason = Status.NONFINITE  # a non-finite loss at every step of the epoch: nothing to descend on
                break
            if row["loss"] < best["loss"]:
                best.update(loss=row["loss"], w=w.clone(), epoch=epoch, acc=row["accuracy"], row=row)
            if bar is not None:
                bar(row)
            if callback is not None and callback_stops(callback, OptimizeResult(row)):
                reason = Status.CALLBACK
                break
            if reason in (Status.MAX_TIME, Status.MAX_EVALS):
                break
    except KeyboardInterrupt:
        reason = Status.INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    res = _training_result(method, reason, stepper, eval_samples, t0, history, best, flat, net, test_data)
    if error is not None:
        res.exception = error
        raise ObjectiveError(f"training stopped: the loss raised {type(error).__name__}: {error} "
                             f"(epoch {len(history.get('epoch', [])) + 1}); the result so far is in this "
                             "exception's .result", res) from error
    return res


def _one_epoch(stepper: Any, data: Any, batch_size: int, data_gen: Any, device: Any, t0: float,
               max_time: float | None, max_evals: float | None = None) -> tuple[Status, BaseException | None]:
    """One pass over the data: ``(EPOCHS, None)`` when it completed, ``(MAX_TIME, None)`` when the clock ran
    out, ``(MAX_EVALS, None)`` when the next step would exceed ``max_evals``,
    the swarm's own status when it stopped, or ``(OBJECTIVE_ERROR, error)`` when the loss or the model
    raised."""
    for xb, yb in _batches(data, batch_size, data_gen):
        if max_evals is not None and stepper.nfev + stepper.next_cost() > max_evals:
            return Status.MAX_EVALS, None
        try:
            stepper.step(xb.to(device), yb.to(device))
        except _Stopped as stop:
            return stop.status, None
        except Exception as exc:  # the loss, the model or the data raised: keep what was trained
            return Status.OBJECTIVE_ERROR, exc
        if max_time is not None and time.perf_counter() - t0 > max_time:
            return Status.MAX_TIME, None
    return Status.EPOCHS, None


def _epoch_row(net: Any, flat: FlatParams, w: Any, select: Any, test_data: Any, loss: Callable, eval_batch_size: int,
               stepper: Any, epoch: int, t0: float) -> tuple[dict[str, Any], int]:
    """The history row of an epoch (selection loss and accuracy, test metrics, counts, temperature) and the
    samples its evaluation took."""
    row: dict[str, Any] = {"epoch": epoch}
    row["loss"], row["accuracy"], samples = _evaluate(net, flat, w, select, loss, eval_batch_size)
    if test_data is not None:
        row["test_loss"], row["test_accuracy"], k = _evaluate(net, flat, w, test_data, loss, eval_batch_size)
        samples += k
    row.update(nfev=stepper.nfev, forward_samples=stepper.forward_samples, time=time.perf_counter() - t0,
               **stepper.temperature())
    return row, samples


def _training_result(method: str, status: Status, stepper: Any, eval_samples: int, t0: float,
                     history: dict[str, list[Any]], best: dict[str, Any], flat: FlatParams, net: Any,
                     test_data: Any) -> OptimizeResult:
    if best["w"] is None and status in (Status.EPOCHS, Status.MAX_TIME, Status.MAX_EVALS, Status.CALLBACK) and history:
        status = Status.NONFINITE  # no epoch had a finite loss: nothing was learned that could be selected
    # a model trained until the clock or the callback stopped it is a result too
    success = status.success or status in (Status.MAX_TIME, Status.MAX_EVALS, Status.CALLBACK)
    res = OptimizeResult(method=method, status=int(status), reason=status.name, message=status.message,
                         success=success,
                         nfev=stepper.nfev, nfev_nonfinite=stepper.nonfinite(),
                         forward_samples=stepper.forward_samples, backward_samples=stepper.backward_samples,
                         eval_samples=eval_samples, time=time.perf_counter() - t0, history=history,
                         best_epoch=best["epoch"])
    if best["w"] is not None:
        res.update(model=flat.load(net, best["w"]), x=best["w"], fun=best["loss"], accuracy=best["acc"])
        if test_data is not None:
            res.update(test_loss=best["row"]["test_loss"], test_accuracy=best["row"]["test_accuracy"])
    else:
        res.update(model=None, x=None, fun=None, accuracy=None)
    return res


class _Stepper:
    nfev: int
    forward_samples: int
    backward_samples: int

    def step(self, inputs: Any, targets: Any) -> None: ...

    def next_cost(self) -> int:
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> None: ...

    def weights(self) -> Any: ...

    def temperature(self) -> dict[str, float]:
        return {}

    def nonfinite(self) -> int:
        return 0


class _ParticleStepper(_Stepper):
    """A registry method on the flattened weights, driven by the one driver loop (:class:`cbopt.driver.Run`)."""

    def __init__(self, net: Any, flat: FlatParams, method: str, loss: Callable, options: Any, cooling: Any,
                 init: Any, step_gen: Any, init_gen: Any, chunk_size: Any):
        torch = sys.modules["torch"]
        opts = {**NN_DEFAULTS.get(method, {}), **(options or {})}
        x0 = flat.vector(net)
        # the epochs end training: no budget, no convergence or divergence rule
        s = prepare(x0=x0, method=method, options=opts, rng=step_gen,
                    stop=Stop(max_evals=math.inf, xtol=None, ftol=None, divergence=None))
        if s.spec.needs_gradient:
            raise ValueError(f"method {method!r} needs gradients; use method='backprop' for those")
        n = s.params.n_particles
        if s.spec.samples_population:  # an evolution strategy: its samples around the network's weights
            if isinstance(init, bool) or not isinstance(init, (int, float)):
                raise ValueError(f"init: method {method!r} samples its own particles around the model's weights; "
                                 f"give their spread as a number, got {init!r}")
            problem = dataclasses.replace(s.problem, init_scale=float(init))
        else:
            pop = _initial_particles(net, flat, init, n, init_gen)
            problem = dataclasses.replace(s.problem, population=pop[None])
        self.run = Run(s.spec, s.params, problem, s.sampler, s.rules)
        self.f = particle_loss(net, loss, chunk_size)
        self.cooling = cooling
        self.nfev = self.forward_samples = self.backward_samples = 0
        self._torch = torch

    def step(self, inputs: Any, targets: Any) -> None:
        r = self.run
        xa = r.ask()
        if xa is None:
            raise _Stopped(Status(r.result().status))
        e = self.f(xa, inputs, targets)
        r.tell(r.check(e))
        self.nfev += xa.shape[0] * xa.shape[1]
        self.forward_samples += xa.shape[0] * xa.shape[1] * len(inputs)

    def next_cost(self) -> int:
        """Weight vectors the next step evaluates: the first population, then a step's points."""
        n = int(self.run.params.n_particles)
        return n if self.run.state is None else int(getattr(self.run.params, "points_per_step", n))

    def end_epoch(self, epoch: int) -> None:
        if self.cooling is not None and self.run.state is not None:
            self.run.state = self.cooling.apply(self.run.state, epoch)

    def weights(self) -> Any:
        return self.run.state.consensus[0]

    def temperature(self) -> dict[str, float]:
        st = self.run.state
        return {k: float(getattr(st, k)[0]) for k in ("alpha", "sigma") if k in st._fields}

    def nonfinite(self) -> int:
        counts = self.run.book.n_nonfinite
        return 0 if counts is None else int(to_numpy(counts).sum())  # None until the first population is told


def _initial_particles(net: Any, flat: FlatParams, init: Any, n: int, gen: np.random.Generator) -> Any:
    torch = sys.modules["torch"]
    if isinstance(init, torch.Tensor):
        if tuple(init.shape) != (n, flat.dim):
            raise ValueError(f"init: expected particles of shape ({n}, {flat.dim}), got {tuple(init.shape)}")
        return init.to(dtype=flat.dtype, device=flat.device)
    if isinstance(init, str):
        if init != "reset":
            raise ValueError(f"init: expected a number, 'reset' or a tensor (N, d), got {init!r}")
        scratch = copy.deepcopy(net)
        rows = []
        with torch.random.fork_rng(devices=[] if flat.device.type == "cpu" else [flat.device]):
            torch.manual_seed(int(gen.integers(0, 2**63 - 1)))
            for _ in range(n):
                for m in scratch.modules():
                    reset = getattr(m, "reset_parameters", None)
                    if callable(reset):
                        reset()
                rows.append(flat.vector(scratch))
        return torch.stack(rows)
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not math.isfinite(init) or init <= 0:
        raise ValueError(f"init: expected a standard deviation > 0, 'reset' or a tensor (N, d), got {init!r}")
    z = gen.standard_normal((n, flat.dim), dtype=np.float32 if flat.dtype == torch.float32 else np.float64)
    return torch.from_numpy(z * init).to(dtype=flat.dtype, device=flat.device)


class _GradientStepper(_Stepper):
    """Backprop or a zeroth-order estimate into ``.grad``, then a ``torch.optim`` step, on the network itself."""

    def __init__(self, net: Any, flat: FlatParams, method: str, loss: Callable, options: Any,
                 optimizer: Any, step_gen: Any):
        from .zo import ModuleEstimator

        self.net, self.flat, self.loss = net, flat, loss
        params = [p for p in net.parameters() if p.requires_grad]
        self.opt = (optimizer or _default_optimizer(method))(params)
        if method == "backprop":
            if options:
                raise TypeError(f"options: backprop takes none (configure the optimizer), got {sorted(options)}")
            self.est = None
        else:
            kind = method[3:]
            opts = dict(options or {})
            unknown = sorted(set(opts) - {"mu", "n_directions"})
            if unknown:
                raise TypeError(f"options: unknown option(s) {unknown} for {method!r}; valid: ['mu', 'n_directions']")
            self.est = ModuleEstimator(params, kind=kind, rng=step_gen, **opts)
        self.nfev = self.forward_samples = self.backward_samples = 0
        self._nonfinite = self.steps = 0  # steps with a non-finite loss, of all steps

    def step(self, inputs: Any, targets: Any) -> None:
        net = self.net
        net.train()
        self.opt.zero_grad(set_to_none=False)
        if self.est is None:
            value = self.loss(net(inputs), targets)
            value.backward()
            self.nfev += 1
            self.forward_samples += len(inputs)
            self.backward_samples += len(inputs)
            value = float(value.detach())
        else:
            before = self.est.nfev
            net.eval()
            value = self.est.backward(lambda: self.loss(net(inputs), targets))
            k = self.est.nfev - before
            self.nfev += k
            self.forward_samples += k * len(inputs)
        self.steps += 1
        if not math.isfinite(value):
            self._nonfinite += 1
        self.opt.step()

    def next_cost(self) -> int:
        """Forward passes a step takes: one for backprop, the estimate's points for a zeroth-order method."""
        return 1 if self.est is None else int(self.est.estimator.points(self.est.n_directions))

    def end_epoch(self, epoch: int) -> None:
        return None

    def weights(self) -> Any:
        return self.flat.vector(self.net)  # a new tensor (torch.cat)

    def nonfinite(self) -> int:
        return self._nonfinite


__all__ = ["Cooling", "FlatParams", "NN_DEFAULTS", "objective", "particle_loss", "train"]
