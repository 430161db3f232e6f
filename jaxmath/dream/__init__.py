"""DeepDream on jaxmath's own networks (seed 003): ascend a layer's activation by changing the input image.

    objective = dream.layer_objective(model, "c3", channel=5)       # or kind="l2", or layer="out", channel=k
    image, info = dream.deep_dream(objective, params, x, key, num_octaves=3, steps_per_octave=20)
"""

from jaxmath.dream.deepdream import DreamInfo as DreamInfo
from jaxmath.dream.deepdream import deep_dream as deep_dream
from jaxmath.dream.deepdream import normalized_step as normalized_step
from jaxmath.dream.deepdream import octave_shapes as octave_shapes
from jaxmath.dream.deepdream import roll as roll
from jaxmath.dream.deepdream import unroll as unroll
from jaxmath.dream.objectives import KINDS as KINDS
from jaxmath.dream.objectives import layer_names as layer_names
from jaxmath.dream.objectives import layer_objective as layer_objective
from jaxmath.dream.objectives import layer_shapes as layer_shapes
