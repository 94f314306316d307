"""Registry entries of the clipping group: torch's clip_grad_norm_ as a chain member."""

import optix
from optix.torch.clip import clip_grad_norm_transform
from optix.torch.optim import sgd
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "torch.clip_grad_norm_transform",
        lambda: optix.chain(clip_grad_norm_transform(1.0), sgd(0.05, momentum=0.9)),
        "torch.nn.utils.clip_grad_norm_ + torch.optim.SGD",
        6e-5,
    ),
]
