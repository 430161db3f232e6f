"""Models as pure functions over parameter pytrees: ``init(key, ...)``, ``apply(params, x)``, ``fit``."""

from jaxmath.models.model import Model as Model
from jaxmath.models.model import from_config as from_config
from jaxmath.models.model import register_factory as register_factory

from jaxmath.models import mcculloch_pitts as mcculloch_pitts
from jaxmath.models import perceptron as perceptron
from jaxmath.models import sigmoid_neuron as sigmoid_neuron
from jaxmath.models import linear_regression as linear_regression
from jaxmath.models import ridge as ridge
from jaxmath.models import lasso as lasso
from jaxmath.models import logistic_regression as logistic_regression

from jaxmath.models import mlp as mlp
from jaxmath.models import lenet5 as lenet5

from jaxmath.models.saving import load as load
from jaxmath.models.saving import save as save
