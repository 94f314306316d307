"""Fast steps for any transformation: leaves of one dtype packed into one buffer.

``packed(tx)`` runs ``tx`` on contiguous buffers when its traced code proves that gives
the numbers of the leaf-by-leaf run (``packing_plan`` says whether and why not);
``Layout`` maps trees to buffers and back; ``donating_step`` is a jitted step that
updates params and state in place.
"""

from optix.transforms.packing.layout import Layout
from optix.transforms.packing.plan import PackingPlan
from optix.transforms.packing.wrapper import donating_step, packed, packing_plan

__all__ = ["Layout", "PackingPlan", "donating_step", "packed", "packing_plan"]
