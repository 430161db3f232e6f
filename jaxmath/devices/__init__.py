"""Devices: what JAX runs on, matmul precision, data parallelism on sharding (one or many processes),
sizes padded for the matrix units, a systolic-array model."""

from jaxmath.devices import distributed as distributed
from jaxmath.devices import info as info
from jaxmath.devices import padding as padding
from jaxmath.devices import parallel as parallel
from jaxmath.devices import parallel_fit as parallel_fit
from jaxmath.devices import precision as precision
from jaxmath.devices import systolic as systolic
from jaxmath.devices.info import collect_info as collect_info
from jaxmath.devices.info import detect_accelerators as detect_accelerators
from jaxmath.devices.info import fallback_warning as fallback_warning
from jaxmath.devices.info import format_info as format_info
from jaxmath.devices.padding import padded_size as padded_size
from jaxmath.devices.parallel import data_parallel as data_parallel
from jaxmath.devices.parallel import make_mesh as make_mesh
from jaxmath.devices.parallel import replicate as replicate
from jaxmath.devices.parallel import shard_batch as shard_batch
from jaxmath.devices.precision import PRECISIONS as PRECISIONS
from jaxmath.devices.precision import as_precision as as_precision
from jaxmath.devices.precision import matmul_precision as matmul_precision
from jaxmath.devices.precision import set_matmul_precision as set_matmul_precision
from jaxmath.devices.systolic import cycle_model as cycle_model
from jaxmath.devices.systolic import systolic_matmul as systolic_matmul
