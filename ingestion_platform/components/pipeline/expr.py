"""The ``filter`` expression language: a small, safe subset parsed into a pyarrow compute expression.

The text is parsed with Python's ``ast`` parser (``mode="eval"``, nothing is ever evaluated) and every
node is translated from a whitelist; anything else (attributes, subscripts, lambdas, comprehensions,
calls of unknown functions, dunder names) is refused with the offending part named::

    value > 0 and sector in ['Energy', 'Transport']
    not (country == 'FR' or is_null(unit))
    lower(name) != 'total' and length(code) == 5
    (price * quantity) >= 100 and starts_with(code, 'EF')

Columns are bare names (or ``col('a column with spaces')``); literals are numbers, 'strings',
``true``/``false``/``null`` (or Python's ``True``/``False``/``None``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


class ExpressionError(ValueError):
    """A filter expression that cannot be read."""


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_ARITH: dict[type, str] = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _functions() -> dict[str, tuple[int, Callable[..., pc.Expression]]]:
    return {
        "is_null": (1, lambda a: pc.is_null(a)),
        "not_null": (1, lambda a: pc.is_valid(a)),
        "lower": (1, lambda a: pc.utf8_lower(a)),
        "upper": (1, lambda a: pc.utf8_upper(a)),
        "length": (1, lambda a: pc.utf8_length(a)),
        "abs": (1, lambda a: pc.abs(a)),
        "starts_with": (2, lambda a, p: pc.starts_with(a, pattern=_text(p, "starts_with"))),
        "ends_with": (2, lambda a, p: pc.ends_with(a, pattern=_text(p, "ends_with"))),
        "contains": (2, lambda a, p: pc.match_substring(a, pattern=_text(p, "contains"))),
    }


def _text(value: Any, fn: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{fn}(column, 'text'): the second argument must be a quoted text")
    return value


def parse_expression(text: str) -> pc.Expression:
    """The pyarrow expression of ``text``; :class:`ExpressionError` names what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the filter expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    result = _node(tree.body, text)
    if not isinstance(result, pc.Expression):
        raise ExpressionError(f"{text!r} is a constant, not a condition over columns")
    return result


def columns_of(text: str) -> set[str]:
    """The column names an expression reads."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(text.strip(), mode="eval")):
        if isinstance(node, ast.Name) and node.id not in _LITERAL_NAMES and node.id not in _functions():
            names.add(node.id)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "col":
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def _snippet(node: ast.AST, text: str) -> str:
    return ast.get_source_segment(text.strip(), node) or type(node).__name__


def _node(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = [_expr(v, text) for v in node.values]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.UnaryOp):
        operand = _node(node.operand, text)
        if isinstance(node.op, ast.Not):
            return ~_as_expr(operand, node, text)
        if isinstance(node.op, ast.USub):
            return -operand if not isinstance(operand, pc.Expression) else pc.negate(operand)
        if isinstance(node.op, ast.UAdd):
            return operand
    if isinstance(node, ast.Compare):
        left = _node(node.left, text)
        out = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _node(right_node, text)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise ExpressionError(f"'in' needs a list of values in {_snippet(node, text)!r}")
                term = _as_expr(left, node, text).isin(pa.array(right) if right else pa.array([], pa.null()))
                term = ~term if isinstance(op, ast.NotIn) else term
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if right is not None:
                    raise ExpressionError(f"'is' compares with null only in {_snippet(node, text)!r}")
                term = pc.is_null(_as_expr(left, node, text))
                term = ~term if isinstance(op, ast.IsNot) else term
            elif type(op) in _COMPARE:
                term = _COMPARE[type(op)](_scalar_side(left), _scalar_side(right))
            else:
                raise ExpressionError(f"operator not allowed in {_snippet(node, text)!r}")
            out = term if out is None else out & term
            left = right
        return out
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return pc.Expression._call(
            _ARITH[type(node.op)], [_scalar(_node(node.left, text)), _scalar(_node(node.right, text))]
        )
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int, float, str))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _LITERAL_NAMES:
            return _LITERAL_NAMES[node.id]
        if node.id.startswith("_"):
            raise ExpressionError(f"name {node.id!r} is not allowed (names starting with _ are reserved)")
        return pc.field(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_node(e, text) for e in node.elts]
        if any(isinstance(v, pc.Expression) for v in values):
            raise ExpressionError(f"a list holds constants only in {_snippet(node, text)!r}")
        return values
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name == "col" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
            return pc.field(str(node.args[0].value))
        functions = _functions()
        if name in functions:
            arity, fn = functions[name]
            if len(node.args) != arity:
                raise ExpressionError(f"{name}() takes {arity} argument(s) in {_snippet(node, text)!r}")
            args = [_node(a, text) for a in node.args]
            return fn(_scalar(args[0]), *args[1:])
        raise ExpressionError(
            f"unknown function {name!r} in {_snippet(node, text)!r}; allowed: col, {', '.join(sorted(functions))}"
        )
    raise ExpressionError(f"{_snippet(node, text)!r} is not allowed in a filter expression")


def _expr(node: ast.AST, text: str) -> pc.Expression:
    return _as_expr(_node(node, text), node, text)


def _as_expr(value: Any, node: ast.AST, text: str) -> pc.Expression:
    if not isinstance(value, pc.Expression):
        raise ExpressionError(f"{_snippet(node, text)!r} is a constant where a condition is expected")
    return value


def _scalar(value: Any) -> Any:
    return value if isinstance(value, pc.Expression) else pc.scalar(value)


def _scalar_side(value: Any) -> Any:
    if isinstance(value, list):
        raise ExpressionError("a list can only follow 'in'")
    return value if isinstance(value, pc.Expression) else pc.scalar(value)
