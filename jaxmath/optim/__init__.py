"""Hand-written optimizers as pure state transforms (optax's contract, no optax).

``opt = adam(learning_rate=1e-3); state = opt.init(params); updates, state = opt.update(grads, state, params);
params = apply_updates(params, updates)``.

Guards:
  - ``learning_rate`` is a finite number >= 0 or a callable schedule ``count -> rate`` (a string, None or a
    list is a TypeError; a negative, NaN or infinite number a ValueError), checked when the optimizer is built.
  - ``update`` checks every per-parameter state leaf (moments, buffers) against the grads at trace time:
    same structure, shape and dtype, or a ValueError naming the leaf (``state.mu['w'] has shape (3, 1) ...``);
    nothing broadcasts.
  - A schedule's values are only known inside the compiled step. ``training.fit`` / ``run_epoch`` check the
    rate each step applies (every ``learning_rate`` field of the optimizer state): a negative or NaN rate is
    never applied, and ``fit`` stops with a warning naming the rate and the step. In a hand-written loop, wrap
    the schedule in ``checked_schedule(schedule)``: a negative, NaN or infinite rate then comes out as NaN, so
    the update is NaN and any non-finite guard (``skip_nonfinite``, your own ``isfinite`` check) sees it
    instead of a silent gradient ascent.
"""

from jaxmath.optim.adadelta import AdadeltaState as AdadeltaState
from jaxmath.optim.adadelta import adadelta as adadelta
from jaxmath.optim.adagrad import AdagradState as AdagradState
from jaxmath.optim.adagrad import adagrad as adagrad
from jaxmath.optim.adam import AdamState as AdamState
from jaxmath.optim.adam import adam as adam
from jaxmath.optim.adam import adamw as adamw
from jaxmath.optim.base import EmptyState as EmptyState
from jaxmath.optim.base import GradientTransformation as GradientTransformation
from jaxmath.optim.base import Optimizer as Optimizer
from jaxmath.optim.base import apply_updates as apply_updates
from jaxmath.optim.base import checked_schedule as checked_schedule
from jaxmath.optim.base import current_learning_rate as current_learning_rate
from jaxmath.optim.rmsprop import RMSpropState as RMSpropState
from jaxmath.optim.rmsprop import rmsprop as rmsprop
from jaxmath.optim.schedules import constant as constant
from jaxmath.optim.schedules import cosine_decay as cosine_decay
from jaxmath.optim.schedules import exponential_decay as exponential_decay
from jaxmath.optim.schedules import piecewise_constant as piecewise_constant
from jaxmath.optim.schedules import warmup_cosine_decay as warmup_cosine_decay
from jaxmath.optim.sgd import SGDState as SGDState
from jaxmath.optim.sgd import sgd as sgd
from jaxmath.optim.transforms import ChainState as ChainState
from jaxmath.optim.transforms import add_decayed_weights as add_decayed_weights
from jaxmath.optim.transforms import chain as chain
from jaxmath.optim.transforms import clip_by_global_norm as clip_by_global_norm
from jaxmath.optim.transforms import clip_by_value as clip_by_value
from jaxmath.optim.transforms import global_norm as global_norm
from jaxmath.optim.transforms import scale as scale
from jaxmath.optim.transforms import set_to_zero as set_to_zero
from jaxmath.optim.wrappers import AccumulateState as AccumulateState
from jaxmath.optim.wrappers import MultiTransformState as MultiTransformState
from jaxmath.optim.wrappers import SkipNonfiniteState as SkipNonfiniteState
from jaxmath.optim.wrappers import accumulate as accumulate
from jaxmath.optim.wrappers import all_finite as all_finite
from jaxmath.optim.wrappers import multi_transform as multi_transform
from jaxmath.optim.wrappers import skip_nonfinite as skip_nonfinite
