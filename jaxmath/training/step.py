"""``make_train_step``: one gradient step as a pure function ``step(state, batch) -> (state, metrics)``.

The step carries its loss function and its optimizer (``step.loss_fn``, ``step.optimizer``), so the optimizer
is given once: ``step.init(params, key=key)`` builds the state from it, and ``run_epoch`` / ``fit`` refuse a
state whose optimizer state another optimizer made.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from jaxmath.training.state import TrainState

DONATED_MESSAGE = (
    "state was donated to a previous run_epoch/step call and its buffers are gone: use the state it returned"
)


# The per-step key of a key-taking loss comes from its own stream of state.key. Plain
# fold_in(state.key, state.step) would collide with the shuffling: with threefry, split(k)[i] equals
# fold_in(k, i), so steps 0 and 1 would reuse the next epoch's state key and shuffle key.
STEP_KEY_STREAM = 0x5EED1055


def takes_key(loss_fn: Callable) -> bool:
    """True when ``loss_fn`` declares (``loss_fn.takes_key = True``) that it is called as
    ``loss_fn(params, batch, key=key)`` with a fresh PRNG key per step (an adversarial loss's attack)."""
    return bool(getattr(loss_fn, "takes_key", False))


def step_key(state: TrainState) -> jax.Array:
    """The PRNG key a key-taking loss gets at ``state``'s step, independent of the shuffling keys.

        k_t = fold_in(fold_in(state.key, STEP_KEY_STREAM), state.step)

    Distinct for every (state.key, state.step): a new key each step of a hand-written loop (``state.key``
    fixed, ``state.step`` counting) and of ``run_epoch`` (which also moves ``state.key`` on every epoch).
    """
    return jax.random.fold_in(jax.random.fold_in(state.key, STEP_KEY_STREAM), state.step)


def with_metrics(loss_fn: Callable) -> Callable:
    """Wrap ``loss_fn`` as ``wrapped(params, batch, key=None) -> (loss, metrics_dict)`` (``{}`` when it returns
    a bare loss); ``key`` is passed on only to a loss that ``takes_key``."""
    needs_key = takes_key(loss_fn)

    def wrapped(params, batch, key=None):
        out = loss_fn(params, batch, key=key) if needs_key else loss_fn(params, batch)
        if isinstance(out, tuple):
            loss, metrics = out
            return loss, dict(metrics)
        return out, {}

    return wrapped


def _is_optimizer(obj: Any) -> bool:
    return hasattr(obj, "init") and hasattr(obj, "update")


def is_donated(tree: Any) -> bool:
    """True when any array of ``tree`` was deleted (donated to a jitted call that consumed it)."""
    return any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree_util.tree_leaves(tree))


def check_not_donated(state: Any, *, name: str = "state") -> None:
    """Refuse a state whose buffers a donating call consumed, before XLA's own error deep inside."""
    if is_donated(state):
        raise ValueError(DONATED_MESSAGE if name == "state" else DONATED_MESSAGE.replace("state", name, 1))


def _signature(tree: Any):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((tuple(leaf.shape), str(leaf.dtype)) for leaf in leaves)


def _describe(signature) -> str:
    treedef, leaves = signature
    shown = ", ".join(f"{dtype}{list(shape)}" for shape, dtype in leaves[:6])
    more = f", ... ({len(leaves)} leaves)" if len(leaves) > 6 else ""
    return f"{treedef} with leaves [{shown}{more}]"


class TrainStep:
    """A jitted, pure training step with the loss function and the optimizer it was built from.

    Call it as ``step(state, batch) -> (state, metrics)``. Attributes:
      loss_fn: ``loss_fn(params, batch) -> loss | (loss, metrics)``.
      optimizer: the ``jaxmath.optim.Optimizer`` whose ``update`` the step applies.
      optimizer_fn: the factory ``optimizer_fn(learning_rate=...) -> Optimizer`` the step was made from, or
        None (``fit_ensemble`` uses it to give each member its own learning rate).
      pure: the un-jitted ``step`` function (``run_epoch`` traces it into its scan).
      jit, donate: as given to ``make_train_step``.
    """

    def __init__(self, loss_fn, optimizer, *, optimizer_fn=None, jit=True, donate=True):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.optimizer_fn = optimizer_fn
        self.jit = jit
        self.donate = donate
        self.pure = _pure_step(loss_fn, optimizer)
        self._call = jax.jit(self.pure, donate_argnums=(0,) if donate else ()) if jit else self.pure
        self._opt_signatures: dict = {}

    def __call__(self, state: TrainState, batch: Any):
        try:
            return self._call(state, batch)
        except (RuntimeError, ValueError) as err:
            # XLA's own words for a consumed buffer; checked after the fact so the hot path costs nothing.
            if "deleted" in str(err) or "donated" in str(err):
                if is_donated(state):
                    raise ValueError(DONATED_MESSAGE) from err
            raise

    def __repr__(self) -> str:
        name = getattr(self.loss_fn, "__name__", type(self.loss_fn).__name__)
        return f"TrainStep(loss_fn={name}, optimizer={self.optimizer!r}, jit={self.jit}, donate={self.donate})"

    def init(self, params: Any, *, key: jax.Array) -> TrainState:
        """A fresh ``TrainState`` for this step: ``TrainState.create(params, step.optimizer, key=key)``.

        Args:
          params: the model's parameters (copied: the caller's arrays survive donating steps).
          key: PRNG key for shuffling (``run_epoch`` splits it every epoch).
        """
        return TrainState.create(params, self.optimizer, key=key)

    def check_state(self, state: TrainState, *, stacked: bool = False) -> None:
        """Refuse a state whose ``opt_state`` this step's optimizer did not make (structure, shapes, dtypes).

        Args:
          state: a ``TrainState`` (with ``stacked``, every leaf has a leading ensemble axis).
          stacked: compare against ``vmap(optimizer.init)`` of the stacked params.
        """
        if not isinstance(state, TrainState):
            raise TypeError(f"state must be a jaxmath.training.TrainState (from step.init), got {type(state).__name__}")
        params_sig = _signature(state.params)
        cache_key = (params_sig, stacked)
        want = self._opt_signatures.get(cache_key)
        if want is None:
            init = jax.vmap(self.optimizer.init) if stacked else self.optimizer.init
            want = _signature(jax.eval_shape(init, state.params))
            self._opt_signatures[cache_key] = want
        got = _signature(state.opt_state)
        if got != want:
            raise ValueError(
                "state.opt_state was not made by this train step's optimizer: train_step.optimizer.init(params) "
                f"gives {_describe(want)}, state.opt_state is {_describe(got)}; build the state with "
                "train_step.init(params, key=key)"
            )


def _pure_step(loss_fn: Callable, optimizer: Any) -> Callable:
    grad_fn = jax.value_and_grad(with_metrics(loss_fn), has_aux=True)
    needs_key = takes_key(loss_fn)

    def step(state: TrainState, batch: Any):
        # Ordinary losses trace exactly as before: no key is derived for them.
        key = step_key(state) if needs_key else None
        (loss, metrics), grads = grad_fn(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        # θ + u, kept in θ's dtype (float32 params stay float32 whatever the updates' dtype).
        params = jax.tree_util.tree_map(lambda p, u: (p + u).astype(p.dtype), state.params, updates)
        new_state = TrainState(params=params, opt_state=opt_state, step=state.step + 1, key=state.key)
        return new_state, {"loss": loss, **metrics}

    return step


def make_train_step(
    loss_fn: Callable,
    optimizer: Any,
    *,
    learning_rate: Any = None,
    jit: bool = True,
    donate: bool = True,
) -> TrainStep:
    """A training step: gradient of ``loss_fn`` at ``state.params``, then the optimizer's update.

        g = ∇_θ C(θ_t; batch),   (u, s_{t+1}) = update(g, s_t, θ_t),   θ_{t+1} = θ_t + u

    θ ↔ ``state.params``, s ↔ ``state.opt_state``, C ↔ ``loss_fn``, update ↔ ``optimizer.update``
    (updates already carry the minus sign, as in optax: for SGD u = -η g).

    Args:
      loss_fn: ``loss_fn(params, batch) -> loss`` or ``-> (loss, metrics)`` with ``metrics`` a dict of
        scalars (e.g. ``{"accuracy": ...}``); ``batch`` is whatever you pass to ``step`` (``run_epoch`` passes
        ``(x, labels)`` with the raw uint8 images, see ``make_classifier_loss``). A loss that needs
        randomness at every step (``jaxmath.adversarial.adversarial_loss``: PGD's random start) declares it
        with the attribute ``loss_fn.takes_key = True``; the step then calls
        ``loss_fn(params, batch, key=k_t)`` with k_t = fold_in(fold_in(state.key, STEP_KEY_STREAM), state.step)
        (``step_key``): a new key every step, reproducible from the state's key, and drawn from a stream of
        its own, so it never equals a key ``run_epoch`` shuffles with (split(k)[i] = fold_in(k, i) under
        threefry, hence no plain fold_in(state.key, step)). Losses without the attribute are called exactly
        as before. ``training.evaluate`` and ``fit``'s validation call a key-taking loss with fixed keys
        (see ``evaluate``).
      optimizer: a ``jaxmath.optim.Optimizer`` (``init(params)``, ``update(grads, state, params)``), or a
        factory ``optimizer_fn(*, learning_rate) -> Optimizer`` such as ``optim.sgd`` together with
        ``learning_rate``; a step made from a factory can give each member of an ensemble its own learning
        rate (``fit_ensemble(..., learning_rates=...)``).
      learning_rate: with a factory: the learning rate of ``step.optimizer``; must be None otherwise.
      jit: the step is ``jax.jit``-compiled (True) or runs the bare pure function (for your own ``jit``/``vmap``).
      donate: with ``jit``, donate the input state's buffers to the output (no copy of params and optimizer
        state per step); the state you pass in is then consumed: use the returned one.

    Returns:
      ``TrainStep``: ``step(state, batch) -> (state, metrics)`` where ``metrics`` is ``{"loss": scalar, **loss_fn's
      metrics}``, evaluated at the params *before* the update; ``step.init(params, key=key)`` builds the state.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
    optimizer_fn = None
    if _is_optimizer(optimizer):
        if learning_rate is not None:
            raise TypeError("learning_rate is for optimizer factories (optim.sgd); this optimizer already has one")
    elif callable(optimizer):
        if learning_rate is None:
            raise TypeError(
                "optimizer is a factory (e.g. optim.sgd): give learning_rate=..., or pass an optimizer "
                "such as optim.sgd(learning_rate=0.1)"
            )
        optimizer_fn = optimizer
        optimizer = optimizer_fn(learning_rate=learning_rate)
        if not _is_optimizer(optimizer):
            raise TypeError(f"optimizer factory must return an Optimizer (init, update), got {optimizer!r}")
    else:
        raise TypeError(f"optimizer must have init and update (a jaxmath.optim.Optimizer), got {optimizer!r}")
    return TrainStep(loss_fn, optimizer, optimizer_fn=optimizer_fn, jit=jit, donate=donate)
