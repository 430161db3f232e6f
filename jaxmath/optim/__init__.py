"""Hand-written optimizers as pure state transforms (optax's contract, no optax).

``opt = adam(1e-3); state = opt.init(params); updates, state = opt.update(grads, state, params);
params = apply_updates(params, updates)``.
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
from jaxmath.optim.rmsprop import RMSpropState as RMSpropState
from jaxmath.optim.rmsprop import rmsprop as rmsprop
from jaxmath.optim.sgd import SGDState as SGDState
from jaxmath.optim.sgd import sgd as sgd
