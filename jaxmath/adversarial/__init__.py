"""Fooling the network: adversarial attacks and their objectives as pure, jitted JAX functions.

    from jaxmath import adversarial
    x_adv = adversarial.pgd(model.apply, params, x, labels, jax.random.key(0),
                            eps=0.3, step_size=0.01, num_steps=40)
    curve = adversarial.robust_accuracy(model.apply, params, x, labels, jax.random.key(0),
                                        eps=[0.0, 0.1, 0.2, 0.3], step_size=0.01, num_steps=40)

``x`` is a float batch in [0, 1] that ``apply_fn(params, x)`` accepts (logits out), ``labels`` are integer
classes; keys are explicit; every attack is jitted with ``apply_fn`` static.
"""

from jaxmath.adversarial.losses import cross_entropy as cross_entropy
from jaxmath.adversarial.losses import cw_margin as cw_margin
from jaxmath.adversarial.attacks import fgsm as fgsm
from jaxmath.adversarial.attacks import pgd as pgd
from jaxmath.adversarial.robust import RobustAccuracy as RobustAccuracy
from jaxmath.adversarial.robust import robust_accuracy as robust_accuracy
from jaxmath.adversarial.training import adversarial_loss as adversarial_loss
from jaxmath.adversarial.training import make_attack as make_attack
from jaxmath.adversarial.fooling import FoolingInfo as FoolingInfo
from jaxmath.adversarial.fooling import NoiseConfidence as NoiseConfidence
from jaxmath.adversarial.fooling import fooling_image as fooling_image
from jaxmath.adversarial.fooling import fooling_objective as fooling_objective
from jaxmath.adversarial.fooling import noise_confidence as noise_confidence
from jaxmath.adversarial.fooling import total_variation as total_variation
from jaxmath.adversarial.patch import PatchInfo as PatchInfo
from jaxmath.adversarial.patch import apply_patch as apply_patch
from jaxmath.adversarial.patch import fit_patch as fit_patch
from jaxmath.adversarial.patch import patch_loss as patch_loss
from jaxmath.adversarial.patch import patch_success_rate as patch_success_rate
from jaxmath.adversarial.patch import random_positions as random_positions
from jaxmath.adversarial.patch_transform import PatchPlacement as PatchPlacement
from jaxmath.adversarial.patch_transform import apply_transformed_patch as apply_transformed_patch
from jaxmath.adversarial.patch_transform import random_placements as random_placements
