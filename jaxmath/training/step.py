"""``make_train_step``: one gradient step as a pure function ``step(state, batch) -> (state, metrics)``."""

from __future__ import annotations

from typing import Any, Callable

import jax

from jaxmath.training.state import TrainState


def with_metrics(loss_fn: Callable) -> Callable:
    """Wrap ``loss_fn`` so it always returns ``(loss, metrics_dict)`` (``{}`` when it returns a bare loss)."""

    def wrapped(params, batch):
        out = loss_fn(params, batch)
        if isinstance(out, tuple):
            loss, metrics = out
            return loss, dict(metrics)
        return out, {}

    return wrapped


def make_train_step(loss_fn: Callable, optimizer: Any, *, jit: bool = True, donate: bool = True) -> Callable:
    """A training step: gradient of ``loss_fn`` at ``state.params``, then the optimizer's update.

        g = ∇_θ C(θ_t; batch),   (u, s_{t+1}) = update(g, s_t, θ_t),   θ_{t+1} = θ_t + u

    θ ↔ ``state.params``, s ↔ ``state.opt_state``, C ↔ ``loss_fn``, update ↔ ``optimizer.update``
    (updates already carry the minus sign, as in optax: for SGD u = -η g).

    Args:
      loss_fn: ``loss_fn(params, batch) -> loss`` or ``-> (loss, metrics)`` with ``metrics`` a dict of
        scalars (e.g. ``{"accuracy": ...}``); ``batch`` is whatever you pass to ``step`` (``run_epoch`` passes
        ``(images, labels)`` with the raw uint8 images, see ``make_classifier_loss``).
      optimizer: a ``jaxmath.optim.Optimizer`` (``init(params)``, ``update(grads, state, params)``).
      jit: return ``jax.jit(step)`` (True) or the bare pure function, for your own ``jit``/``vmap``/``scan``.
      donate: with ``jit``, donate the input state's buffers to the output (no copy of params and optimizer
        state per step); the state you pass in is then consumed: use the returned one.

    Returns:
      ``step(state: TrainState, batch) -> (TrainState, metrics)`` where ``metrics`` is
      ``{"loss": scalar, **loss_fn's metrics}``, evaluated at the params *before* the update.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must have init and update (a jaxmath.optim.Optimizer), got {optimizer!r}")
    grad_fn = jax.value_and_grad(with_metrics(loss_fn), has_aux=True)

    def step(state: TrainState, batch: Any):
        (loss, metrics), grads = grad_fn(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        # θ + u, kept in θ's dtype (float32 params stay float32 whatever the updates' dtype).
        params = jax.tree_util.tree_map(lambda p, u: (p + u).astype(p.dtype), state.params, updates)
        new_state = TrainState(params=params, opt_state=opt_state, step=state.step + 1, key=state.key)
        return new_state, {"loss": loss, **metrics}

    if jit:
        return jax.jit(step, donate_argnums=(0,) if donate else ())
    return step
