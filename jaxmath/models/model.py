"""``Model``: a model's config travelling with its two pure functions, in the spirit of stax's pair.

stax returns ``(init_fun, apply_fun)`` from a layer constructor so that nobody re-supplies the layer's options
at every call. ``Model`` does the same and also keeps the options as data (``config``), so a model can be saved
beside its params and rebuilt when they are loaded:

    model = mlp.make((784, 16, 16, 10), activation="sigmoid", output="sigmoid")
    params = model.init(jax.random.key(0))          # a plain pytree
    outputs = model.apply(params, x)                 # pure, jitted
    same = from_config(model.config)                 # rebuilt from JSON-able data
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

__all__ = ["Model", "from_config", "register_factory"]


class Model(NamedTuple):
    """A model as two pure functions plus the options that built them.

    Fields:
      init: ``init(key) -> params``; params are a plain pytree.
      apply: ``apply(params, x) -> outputs``; the forward pass, jit-compiled.
      config: JSON-serialisable dict of the factory's arguments, with ``"name"`` naming the factory
        (``from_config`` rebuilds the model from it).
      layer_outputs: ``layer_outputs(params, x) -> dict`` of every layer's output by name, one of them being
        ``apply``'s (for feature maps, DeepDream and attacks on hidden layers); None where a model
        has no layers to name.
    """

    init: Callable[..., Any]
    apply: Callable[..., Any]
    config: dict
    layer_outputs: Callable[..., dict] | None = None


_FACTORIES: dict[str, Callable[..., Model]] = {}


def register_factory(name: str, factory: Callable[..., Model]) -> None:
    """Make ``from_config`` rebuild models whose ``config["name"]`` is ``name`` with ``factory(**config)``."""
    _FACTORIES[name] = factory


def from_config(config: dict) -> Model:
    """Rebuild a ``Model`` from its ``config`` (as saved with its params).

    Args:
      config: a dict with ``"name"`` (a registered factory, e.g. ``"mlp"``) and that factory's arguments.

    Returns:
      The ``Model`` the factory returns for those arguments.
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"config must be a dict with a 'name' entry, got config={config!r}")
    name = config["name"]
    if name not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise ValueError(f"config['name'] must name a model factory ({known}), got {name!r}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return _FACTORIES[name](**kwargs)
