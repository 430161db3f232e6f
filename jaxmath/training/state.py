"""``TrainState``: everything one training step reads and writes, as a single pytree."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class TrainState(NamedTuple):
    """The state a training step carries from one step to the next (a pytree: jit, vmap and scan it).

    Fields:
      params: the model's parameters (any pytree, e.g. the MLP's list of ``(W, b)``).
      opt_state: the optimizer's state, from ``optimizer.init(params)``.
      step: int32 scalar, the number of steps taken so far.
      key: PRNG key that ``run_epoch`` splits to shuffle each epoch (and a model may split for dropout).

    Build one with ``step.init(params, key=key)`` from a ``make_train_step`` step (the optimizer given once),
    or ``TrainState.create(params, optimizer, key=key)`` for a hand-written loop. For K models trained at once
    (``jaxmath.training.ensemble``) every leaf carries a leading axis of size K.
    """

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array

    @classmethod
    def create(cls, params: Any, optimizer: Any, *, key: jax.Array) -> "TrainState":
        """A fresh state: a copy of ``params``, ``opt_state = optimizer.init(params)``, ``step = 0``.

        Args:
          params: the model's parameters.
          optimizer: a ``jaxmath.optim.Optimizer`` (``init``, ``update``).
          key: PRNG key for shuffling.
        """
        # Copies: donating steps then consume the state's buffers, never the caller's params or key.
        params = jax.tree_util.tree_map(jnp.copy, params)
        return cls(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32), key=jnp.copy(key))
