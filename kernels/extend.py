"""New activations, output heads and update rules, each added in one call.

Each call writes every table the piece belongs to: its row (:mod:`._tables`,
with a fresh code), its compiled side (the records the dispatches are generated
from) and its NumPy twin (:mod:`fastbp.reference`); the dispatches are then
generated again. Everything that enumerates the tables (validation, the
network's options, the equivalence tests, the asv suite) then sees it.

Call these before any kernel is compiled in the process (first thing after
``import fastbp``): compiled callers keep the dispatch they were built with, so
a later call raises ``RuntimeError``. The on-disk cache is keyed on the
package's own sources, so a process that extends the tables compiles in
memory only.
"""

from numba import njit

from . import _activations, _cache, _generate, _heads, _optimizers, _tables
from ._jit import JIT_OPTIONS

__all__ = ["activation", "head", "kernel", "update_rule"]


def kernel(func):
    """Compile a piece's function lazily with the kernels' options, in memory only:
    it is not one of the package's sources, which key the on-disk cache (and it
    may have no source file at all, typed at a prompt)."""
    return njit(_nrt=True, **JIT_OPTIONS)(func)


def _prepare(kind, name, table):
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"a new {kind}'s name must be an identifier; got {name!r}")
    if name in table:
        raise ValueError(f"there is already {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                         f"named {name!r}")
    if _cache.any_compiled():
        raise RuntimeError(f"add the {kind} {name!r} before any kernel is compiled: "
                           "compiled callers keep the dispatch they were built with")
    _cache.detach_all()


def _finish():
    _generate.regenerate()


def activation(name, *, output_range, f, prime, prime_from_output, reference):
    """Add the element-wise activation ``name`` (a hidden or output activation).

    ``f``, ``prime`` and ``prime_from_output``: compiled scalar kernels
    (made with :func:`kernel`) of ``(x, one)``, ``one`` being 1 in the
    arrays' dtype: ``f(z)``, ``f'(z)`` and ``f'(z)`` from ``a = f(z)``.
    ``output_range``: ``(low, high)``, the values ``f`` can take.
    ``reference``: ``(f, f')``, NumPy functions of an array ``z``.
    """
    from .. import reference as ref

    _prepare("activation", name, _tables.ACTIVATIONS)
    code = _tables.add_activation(name, _tables.Activation(0, tuple(output_range)))
    _activations.ELEMENTWISE_KERNELS[code] = _activations.Elementwise(f, prime,
                                                                      prime_from_output)
    _activations.derive_loops(name, code)
    ref.add_activation(name, *reference)
    _finish()
    return code


def head(name, *, loss, output, entry_cost, targets, reference, mean=True,
         score="r2"):
    """Add an output head: the loss ``loss`` (a new name, or a new output for an
    existing one) on its canonical link, the output activation ``output``
    (delta ``a - y``).

    ``entry_cost``: a compiled kernel ``(a, z, y)`` of one output's cost,
    ``a = f(z)``; ``reference``: the same in NumPy over arrays. ``targets``:
    what the targets must be (see :class:`._tables.Head`); ``score``:
    ``"accuracy"`` or ``"r2"``.
    """
    from .. import reference as ref

    _prepare("output head", name, {h.name for h in _tables.HEADS})
    code = _tables.add_head(_tables.Head(0, loss, (output,), mean=mean, targets=targets,
                                         score=score, name=name))
    _heads.HEAD_KERNELS[code] = _heads.canonical_head(name, entry_cost)
    ref.add_canonical_head(code, reference)
    _finish()
    return code


def update_rule(name, *, hyperparameters, state, prepare, step, begin=None, defaults,
                reference):
    """Add the update rule ``name``, and ``fit(method=name)`` with it.

    ``hyperparameters``: the names of its float64 hyperparameters, in order;
    ``state``: the names of its parameter-shaped state rows (at most 2).
    ``prepare(hyper, params)``: a compiled kernel returning the batch's
    constants (a tuple, in ``params``' dtype); ``step(p, g, *state,
    constants)``: the compiled per-element step, returning the new ``p`` and
    state entries; ``begin(hyper)``: once per batch before the steps (None:
    nothing). ``defaults``: ``fit``'s option -> default, one per
    hyperparameter. ``reference``: ``(params, grad, hyper, state)`` in NumPy,
    in place, ``hyper`` and ``state`` by name.
    """
    from .. import optimizers, training
    from .. import reference as ref

    _prepare("update rule", name, _tables.UPDATE_RULES)
    if len(state) > len(_optimizers.LOOP_TEMPLATES) - 1:
        raise ValueError(f"an update rule keeps at most {len(_optimizers.LOOP_TEMPLATES) - 1} "
                         f"state rows; got {len(state)}")
    code = _tables.add_rule(name, _tables.UpdateRule(0, tuple(hyperparameters), tuple(state)))
    kernel = _optimizers.RuleKernel(prepare, step, begin or _optimizers.no_begin)
    _optimizers.RULE_KERNELS[code] = _optimizers.rule_update(name, kernel)
    ref.UPDATE_RULES[name] = reference
    training.add_minibatch_method(name, optimizers.add_optimizer(name, dict(defaults)))
    _finish()
    return code
