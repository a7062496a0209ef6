"""Compiled code generated from the tables: a dispatch over codes, and a loop
specialised for one entry.

Each row of a compiled table (``code -> record of compiled functions``) is
written once, and every loop over its codes is derived from it. A dispatch is
written as a *template*: the body for one entry, calling the entry's functions
by their field names. :func:`by_code` repeats that body once per code, as

    if code == c0: <body, with c0's functions>
    elif code == c1: <body, with c1's functions>
    ...
    else: raise ValueError("unknown ... code")

(codes whose records are equal share one branch), so each code gets a loop of
its own (a code read inside a loop kept LLVM from vectorising it), exactly as a
hand-written chain would, and a code no row has fails loudly. Leading
statements of the template that call none of the record's functions run once,
before the branches. A table may grow after import (:mod:`fastbp.kernels.extend`):
every dispatch over it is then generated again, in place, before any kernel is
compiled.

The generated functions are compiled from source that names the template's
file, so they are cached, and their cache entries are stamped, like the kernels
written out by hand.
"""

import ast
import copy
import inspect
import textwrap

#: Every generated function: (what it was made from, the function object whose
#: code is replaced when its table grows).
_GENERATED = []


class _Rename(ast.NodeTransformer):
    def __init__(self, names):
        self.names = names

    def visit_Name(self, node):
        if node.id in self.names:
            return ast.copy_location(ast.Name(self.names[node.id], node.ctx), node)
        return node


def _template(func):
    """The template's module-level ``def`` (decorators dropped) and its body
    without the docstring."""
    lines, first = inspect.getsourcelines(func)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    ast.increment_lineno(tree, first - 1)
    (fn,) = tree.body
    fn.decorator_list = []
    body = fn.body
    doc = body[:1] if (body and isinstance(body[0], ast.Expr)
                       and isinstance(body[0].value, ast.Constant)
                       and isinstance(body[0].value.value, str)) else []
    return tree, fn, doc, body[len(doc):]


def _bind(namespace, prefix, record):
    """Bind the record's functions to fresh global names; their renaming map."""
    names = {}
    for field, value in record._asdict().items():
        name = f"_{prefix}__{field}"
        namespace[name] = value
        names[field] = name
    return names


def _compile(func, tree, name):
    """The function ``name`` defined by ``tree`` (a module of one ``def``),
    compiled against the template's globals and under its file name; the
    template's own global binding is left as it was."""
    namespace = func.__globals__
    saved = namespace.get(name, _compile)
    exec(compile(ast.fix_missing_locations(tree), inspect.getsourcefile(func), "exec"), namespace)
    made = namespace[name]
    if saved is _compile:
        del namespace[name]
    else:
        namespace[name] = saved
    return made


def _dispatch_source(func, table, code_name, label):
    tree, fn, doc, body = _template(func)
    message = ast.Constant(f"unknown {label} code (see kernels/_tables.py)")
    chain = [ast.Raise(exc=ast.Call(ast.Name("ValueError", ast.Load()), [message], []),
                       cause=None)]
    # leading statements that call none of the record's functions run once, before
    # the branches (one copy of them, not one per code)
    fields = set(next(iter(table.values()))._fields) if table else set()
    prologue = []
    while body and not fields & {n.id for n in ast.walk(body[0]) if isinstance(n, ast.Name)}:
        prologue.append(body.pop(0))
    # codes with the same record share one branch: one copy of its code
    shared = {}
    for code in sorted(table):
        shared.setdefault(table[code], []).append(code)
    for record, codes in reversed(list(shared.items())):
        names = _bind(func.__globals__, f"{fn.name}_{codes[0]}", record)
        branch = [_Rename(names).visit(copy.deepcopy(stmt)) for stmt in body]
        tests = [ast.Compare(ast.Name(code_name, ast.Load()), [ast.Eq()], [ast.Constant(c)])
                 for c in codes]
        test = tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)
        chain = [ast.If(test=test, body=branch, orelse=chain)]
    fn.body = doc + prologue + chain
    return _compile(func, tree, fn.name)


def by_code(table, jit, code="code", label="table"):
    """Decorator: the template repeated for every code of ``table`` (a mapping
    ``code -> NamedTuple`` of compiled functions, whose field names the
    template calls), branching on its argument ``code``; compiled with ``jit``."""
    def make(func):
        made = jit(_dispatch_source(func, table, code, label))
        _GENERATED.append((lambda: _dispatch_source(func, table, code, label), made))
        return made
    return make


def specialise(func, name, record, jit):
    """``func`` (a template over the fields of ``record``) made into the function
    ``name`` for that one record, compiled with ``jit``."""
    tree, fn, doc, body = _template(func)
    names = _bind(func.__globals__, name, record)
    fn.body = doc + [_Rename(names).visit(stmt) for stmt in body]
    fn.name = name
    made = _compile(func, tree, name)
    return jit(made)


def regenerate():
    """Generate every dispatch again from its table as it is now, replacing each
    function's code in place (callers hold the same objects). Only before any
    kernel is compiled: compiled callers would keep the old dispatch."""
    for source, made in _GENERATED:
        target = getattr(made, "py_func", made)
        target.__code__ = source().__code__
