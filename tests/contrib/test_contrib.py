"""optix.contrib: Optax's names, each the object of the module that owns it."""

import importlib
import inspect

import optax

import optix.contrib
from optix.core import EmptyState
from optix.second_order import hutchinson
from optix.transforms import complex_valued, normalize, privacy, reduce_on_plateau

OWNERS = {
    "differentially_private_aggregate": privacy,
    "DifferentiallyPrivateAggregateState": privacy,
    "dpsgd": privacy,
    "split_real_and_imaginary": complex_valued,
    "SplitRealAndImaginaryState": complex_valued,
    "normalize": normalize,
    "NormalizeState": normalize,
    "hutchinson_estimator_diag_hessian": hutchinson,
    "HutchinsonState": hutchinson,
    "reduce_on_plateau": reduce_on_plateau,
    "ReduceLROnPlateauState": reduce_on_plateau,
}
# The optimizers live in their family files under optix.optimizers.
OPTIMIZER_FAMILIES = {
    "acprop": ("acprop", "scale_by_acprop"),
    "adopt": ("adopt", "scale_by_adopt"),
    "ademamix": ("ademamix", "scale_by_ademamix", "ScaleByAdemamixState"),
    "simplified_ademamix": (
        "simplified_ademamix",
        "scale_by_simplified_ademamix",
        "ScaleBySimplifiedAdEMAMixState",
    ),
    "cocob": ("cocob", "scale_by_cocob", "COCOBState"),
    "dadaptation": ("dadapt_adamw", "DAdaptAdamWState"),
    "dog": ("dog", "dowg", "DoGState", "DoWGState"),
    "galore": ("galore", "scale_by_galore", "GaLoreState", "GaLoreDimensionNumbers"),
    "madgrad": ("madgrad", "scale_by_madgrad", "MadgradState"),
    "mechanic": ("mechanize", "MechanicState"),
    "momo": ("momo", "momo_adam", "MomoState", "MomoAdamState"),
    "muon": ("muon", "scale_by_muon", "MuonState"),
    "muon_axes": ("MuonDimensionNumbers",),
    "prodigy": ("prodigy", "ProdigyState"),
    "sam": ("sam", "SAMState"),
    "schedule_free": ("schedule_free", "schedule_free_eval_params", "ScheduleFreeState"),
    "schedule_free_aliases": ("schedule_free_adamw", "schedule_free_sgd"),
    "sophia": ("sophia", "SophiaState"),
}
for _family, _names in OPTIMIZER_FAMILIES.items():
    OWNERS |= dict.fromkeys(_names, importlib.import_module(f"optix.optimizers.{_family}"))


def test_every_name_is_optax_contrib_s_and_comes_from_its_owner():
    assert set(optix.contrib.__all__) == set(OWNERS)
    for name, module in OWNERS.items():
        assert hasattr(optax.contrib, name), name
        assert getattr(optix.contrib, name) is getattr(module, name), name


def test_signatures_and_state_fields_are_optax_s():
    for name in optix.contrib.__all__:
        ours, theirs = getattr(optix.contrib, name), getattr(optax.contrib, name)
        if hasattr(theirs, "_fields"):
            assert ours._fields == theirs._fields, name
        elif callable(theirs) and not isinstance(theirs, type):
            ours_params = list(inspect.signature(ours).parameters.values())
            theirs_params = list(inspect.signature(theirs).parameters.values())
            # Optax's parameters first, same kinds and defaults; optix may add optional ones.
            shared = ours_params[: len(theirs_params)]
            assert [(p.name, p.kind) for p in shared] == [
                (p.name, p.kind) for p in theirs_params
            ], name
            assert all(p.default is not p.empty for p in ours_params[len(theirs_params) :]), name
            for a, b in zip(shared, theirs_params, strict=True):
                if b.default is None or isinstance(b.default, int | float | str):
                    assert a.default == b.default, (name, a.name)
    assert optix.contrib.NormalizeState is EmptyState
