"""Optax interop: an optix transformation as an instance of Optax's own class.

optix transformations already work where Optax code calls ``init`` and ``update``, and
Optax transformations work inside optix's combinators. ``to_optax`` is for code that
checks Optax's types at run time: ``optax.chain``, ``optax.masked`` and
``optax.MultiSteps`` forward extra arguments (``value``, ``grad``, ``value_fn``) only to
members that are ``optax.GradientTransformationExtraArgs``, and drop them silently for
anything else. optax stays an optional dependency: it is imported on the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optix.core import GradientTransformation, with_extra_args_support

if TYPE_CHECKING:
    import optax


def to_optax(tx: GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """``tx`` as an ``optax.GradientTransformationExtraArgs``, with the same numbers.

    The result holds ``tx``'s own ``init`` and ``update``: the state, the updates and
    every extra keyword argument are ``tx``'s, so a line search such as ``lbfgs`` inside
    ``optax.chain`` still receives ``value``, ``grad`` and ``value_fn``. It passes
    ``isinstance`` checks against ``optax.GradientTransformation`` and
    ``optax.GradientTransformationExtraArgs``. Only the wrapper is Optax's: the state
    classes stay optix's (their names and fields are Optax's, so ``optax.tree.get`` and
    checkpoints of the state work as for Optax's).

    Args:
        tx: An optix transformation, or anything with ``init`` and ``update``
            (``optix.MultiSteps``, a transformation of another library).

    Returns:
        An ``optax.GradientTransformationExtraArgs(init, update)``.

    Raises:
        ImportError: if optax is not installed.

    Checked against optax.chain, optax.masked and optax.MultiSteps forwarding extra
    arguments, and against optix's own runs, in tests/test_optax_interop.py.
    """
    try:
        import optax
    except ImportError as error:
        raise ImportError(
            "optix.to_optax needs optax, which is not installed: pip install optax. "
            "optix transformations need no wrapper where code only calls init and update."
        ) from error
    tx = with_extra_args_support(tx)
    return optax.GradientTransformationExtraArgs(tx.init, tx.update)
