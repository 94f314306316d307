"""torch.optim.lr_scheduler.ReduceLROnPlateau as a transformation fed the monitored value."""

from __future__ import annotations

from optix import _checks
from optix.core import GradientTransformation
from optix.transforms.reduce_on_plateau import reduce_on_plateau


def reduce_lr_on_plateau(
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0,
    eps: float = 1e-8,
    *,
    lr: float = 1.0,
    sign_aware_rtol: bool = False,
) -> GradientTransformation:
    """torch.optim.lr_scheduler.ReduceLROnPlateau: scale updates down when the value plateaus.

    Each ``update(updates, state, params, value=v)`` is torch's ``optimizer.step()``
    followed by ``scheduler.step(v)``: the updates are multiplied by the current scale
    (the lr divided by the base ``lr``), then v decides the scale of the next update:

        better = v < best * (1 - threshold)   (min, rel)    v < best - threshold   (min, abs)
                 v > best * (1 + threshold)   (max, rel)    v > best + threshold   (max, abs)
        best = v, bad = 0 if better, else bad += 1
        if cooldown_counter > 0:  cooldown_counter -= 1;  bad = 0
        if bad > patience:
            new = max(lr_now * factor, min_lr), applied only if lr_now - new > eps
            cooldown_counter = cooldown;  bad = 0

    torch's relative threshold with a negative best accepts small worsenings as
    improvements (pytorch/pytorch#47513); that is reproduced, and
    ``sign_aware_rtol=True`` measures the margin from |best| instead. The state is
    ``ReduceLROnPlateauState``: ``scale``, ``best_value``, ``plateau_count`` (torch's
    num_bad_epochs), ``cooldown_count`` (cooldown_counter). This is
    ``reduce_on_plateau(factor, patience + 1, ..., mode=mode, eps=eps / lr,
    lagged=True)``.

    Args:
        mode: "min" or "max".
        factor: Multiplier of the lr at each reduction, in [0, 1).
        patience: Bad decisions tolerated before reducing, an int >= 0.
        threshold: Margin an improvement must beat, >= 0.
        threshold_mode: "rel" or "abs".
        cooldown: Decisions after a reduction during which bad ones are ignored, an int >= 0.
        min_lr: Floor of the learning rate, in absolute terms like torch's, >= 0.
        eps: Smallest applied reduction of the learning rate, absolute, >= 0.
        lr: The base learning rate of the optimizer whose updates this scales (its lr
            times the scale is torch's lr); min_lr and eps are divided by it. With the
            default 1.0, min_lr and eps are read in units of the scale.
        sign_aware_rtol: Correct the relative threshold for negative values.

    Returns:
        A GradientTransformation whose state is ``ReduceLROnPlateauState``.

    References:
        Checked against torch.optim.lr_scheduler.ReduceLROnPlateau in
        tests/transforms/test_reduce_on_plateau.py.
    """
    fn = "optix.torch.reduce_lr_on_plateau"
    _checks.one_of(fn, "mode", mode, ("min", "max"))
    _checks.one_of(fn, "threshold_mode", threshold_mode, ("rel", "abs"))
    _checks.in_unit_interval(fn, factor=factor)
    _checks.integer_at_least(fn, "patience", patience, 0)
    _checks.integer_at_least(fn, "cooldown", cooldown, 0)
    _checks.non_negative(fn, threshold=threshold, min_lr=min_lr, eps=eps)
    _checks.positive(fn, lr=lr)
    rtol, atol = (threshold, 0.0) if threshold_mode == "rel" else (0.0, threshold)
    return reduce_on_plateau(
        factor,
        patience + 1,
        rtol,
        atol,
        cooldown,
        1,
        min_lr / lr,
        mode=mode,
        eps=eps / lr,
        lagged=True,
        sign_aware_rtol=sign_aware_rtol,
    )
