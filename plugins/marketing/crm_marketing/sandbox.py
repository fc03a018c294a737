"""The template sandbox: Jinja2's immutable sandbox, plus a render budget.

Jinja2's sandbox keeps a template away from Python internals, but not from the machine: nested
``range(100000)`` loops run for hours and ``'x' * 20000000000`` asks for 20 GB. Every render
here runs under a budget (time, steps, size), checked cooperatively at the points where a
template can spend: each loop iteration, call, filter and intercepted operator, each piece of
output. No thread is started and none is left running: the check raises inside the render.

* **Steps**: at most :data:`MAX_STEPS` loop iterations, calls, filters and operators.
* **Time**: at most :data:`MAX_SECONDS` of wall-clock time (checked at every step).
* **Size**: no value the template builds (``*``, ``+``, ``~``, ``%``, ``format``, string
  methods, size-taking filters) and no output may exceed :data:`MAX_CHARS` characters; the
  size is estimated *before* the operation, so nothing large is ever allocated.

The hooks are the public ones of Jinja2's sandbox (``call``, ``call_binop`` with
``intercepted_binops``, ``wrap_str_format``, ``unsafe_undefined``); loops, output and ``~``
are routed through budget filters by rewriting the parsed template (``jinja2.visitor``).
A dunder reached through a filter (``customer|map(attribute='__class__')``) raises at once,
like direct access, instead of becoming a silently printed Undefined.
"""
from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, cast

from jinja2 import StrictUndefined, Template, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

#: Characters of any value a template builds and of its whole output (1 MB of text per message).
MAX_CHARS = 1_000_000
#: Loop iterations, calls, filters and operators per render.
MAX_STEPS = 1_000_000
#: Wall-clock seconds per render (a save checks the template once; a send renders each message).
MAX_SECONDS = 2.0
#: Items of one ``range()`` (Jinja2's own sandbox limit) and of batch/slice counts.
MAX_RANGE = 100_000
#: Bits of an integer ``**`` result (a 30,000-digit number; larger ones cost seconds to print).
MAX_POWER_BITS = 100_000


class BudgetExceeded(TemplateRuntimeError):
    """A render went over its time, step or size budget."""


@dataclass
class Budget:
    """The spending of one render."""

    deadline: float
    steps: int = 0
    produced: int = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise BudgetExceeded(f"more than {MAX_STEPS:,} steps (loop iterations, calls, filters)")
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {MAX_SECONDS:g} s")

    @staticmethod
    def size(n: int, what: str) -> None:
        if n > MAX_CHARS:
            raise BudgetExceeded(f"{what} would be {n:,} characters long (at most {MAX_CHARS:,})")


_current: ContextVar[Budget | None] = ContextVar("crm_marketing_render_budget", default=None)


def _budget() -> Budget:
    b = _current.get()
    if b is None:  # a template of this environment rendered without render(): refuse, never run unbounded
        raise BudgetExceeded("a template must be rendered through crm_marketing.sandbox.render")
    return b


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


_NUMBERS = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_spec(spec: str, what: str) -> None:
    """Widths and precisions in a format spec are bounded (``{:>9999999999}``, ``%9999999999d``)."""
    for n in _NUMBERS.findall(spec):
        if len(n) > 7 or int(n) > MAX_CHARS:
            raise BudgetExceeded(f"{what}: a width or precision of {n[:12]} (at most {MAX_CHARS:,})")


def _check_percent(fmt: str, args: Any) -> None:
    for m in _PERCENT_SPEC.finditer(fmt):
        _check_spec(m.group(0), "a %-format")
    if "*" in fmt:  # widths taken from the arguments
        for a in args if isinstance(args, tuple) else (args,):
            if isinstance(a, int) and abs(a) > MAX_CHARS:
                raise BudgetExceeded(f"a %-format: a width of {a} (at most {MAX_CHARS:,})")


def _check_power(left: Any, right: Any) -> None:
    big = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
    if big and left.bit_length() * right > MAX_POWER_BITS:
        raise BudgetExceeded(f"a power with more than {MAX_POWER_BITS:,} bits")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Estimate the size of an operation's result before Python allocates it."""
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                Budget.size(len(seq) * max(n, 0), "a repetition")
    elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        Budget.size(len(left) + len(right), "a concatenation")
    elif operator == "**":
        _check_power(left, right)
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


def _str_method_size(s: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound of the length of ``s.<name>(*args)`` for the methods that can grow text."""
    ints = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = s.count(args[0]) if args[0] else len(s) + 1
        return len(s) + hits * len(args[1])
    if name == "expandtabs":
        return len(s) + (s.count("\t") + 1) * max([8, *ints])
    if name in ("ljust", "rjust", "center", "zfill"):
        return max([len(s), *ints])
    return len(s)


@pass_context
def _budget_iter(_ctx: Context, iterable: Any) -> Iterator[Any]:
    """Every loop's iterable goes through here: one step per iteration."""
    b = _budget()
    for item in iterable:
        b.step()
        yield item


@pass_context
def _budget_out(_ctx: Context, value: Any) -> Any:
    """Every piece of output (including captured blocks and macro bodies) counts once."""
    b = _budget()
    b.step()
    b.produced += len(value) if isinstance(value, str) else len(str(value))
    Budget.size(b.produced, "the output")
    return value


@pass_context
def _budget_concat(_ctx: Context, parts: list[Any]) -> str:
    """``a ~ b ~ c``: sized before it is joined."""
    _budget().step()
    texts = [str(p) for p in parts]
    Budget.size(sum(map(len, texts)), "a concatenation")
    return "".join(texts)


class _Rewrite(NodeTransformer):
    """Route loops, output and ``~`` through the budget filters."""

    @staticmethod
    def _filter(node: nodes.Node, name: str) -> nodes.Filter:
        return nodes.Filter(cast(nodes.Expr, node), name, [], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        loop = cast(nodes.For, self.generic_visit(node))
        loop.iter = self._filter(loop.iter, "_budget_iter")
        return loop

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        out = cast(nodes.Output, self.generic_visit(node))
        out.nodes = [self._filter(n, "_budget_out") for n in out.nodes]
        return out

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        concat = cast(nodes.Concat, self.generic_visit(node))
        return self._filter(nodes.List(concat.nodes, lineno=concat.lineno), "_budget_concat")


#: filters whose later arguments are sizes or counts: checked against MAX_CHARS / MAX_RANGE
_SIZE_ARGS = {"center": MAX_CHARS, "truncate": MAX_CHARS, "wordwrap": MAX_CHARS, "batch": MAX_RANGE, "slice": MAX_RANGE}


def _guard_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with a step, a check of its size arguments, and a size check of its result."""
    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0  # the context/environment argument

    @wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        b = _budget()
        b.step()
        value, rest = (args[skip] if len(args) > skip else None), args[skip + 1:]
        limit = _SIZE_ARGS.get(name)
        if limit is not None:
            for a in (*rest, *kwargs.values()):
                if isinstance(a, int) and abs(a) > limit:
                    raise BudgetExceeded(f"filter {name}: {a} is larger than {limit:,}")
        if name == "indent" and isinstance(value, str):
            width = (rest or (kwargs.get("width", 4),))[0]
            w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
            Budget.size(len(value) + (value.count("\n") + 1) * max(w, 0), "an indented text")
        elif name == "wordwrap" and isinstance(value, str):
            wrap = kwargs.get("wrapstring", rest[2] if len(rest) > 2 else None)
            Budget.size(len(value) * (1 + _length(wrap)), "a wrapped text")
        elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
            Budget.size(_str_method_size(value, "replace", (str(rest[0]), str(rest[1])), {}), "a replaced text")
        elif name == "join" and value is not None:
            items = [str(x) for x in value] if isinstance(value, Iterable) else value
            sep = kwargs.get("d", rest[0] if rest else "")
            Budget.size(sum(map(len, items)) + _length(sep) * len(items), "a joined text")
            args = (*args[:skip], items, *rest)
        elif name == "format" and isinstance(value, str):
            _check_percent(value, tuple(rest))
        result = f(*args, **kwargs)
        Budget.size(_length(result) if isinstance(result, str) else 0, f"the result of filter {name}")
        return result

    return guarded


def _range(*args: int) -> range:
    _budget().step()
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = MAX_RANGE + 1
    if n > MAX_RANGE:
        raise BudgetExceeded(f"a range of more than {MAX_RANGE:,} items")
    return r


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the render budget (see the module docstring)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.globals = {"range": _range, "dict": dict, "namespace": self.globals["namespace"]}  # no lipsum(n)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(_budget_iter=_budget_iter, _budget_out=_budget_out, _budget_concat=_budget_concat)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _budget().step()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _budget().step()
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            Budget.size(_str_method_size(owner, getattr(obj, "__name__", ""), args, kwargs), "a text")
            if getattr(obj, "__name__", "") == "join" and args:
                items = [str(x) for x in args[0]]
                Budget.size(sum(map(len, items)) + len(owner) * len(items), "a joined text")
                args = (items, *args[1:])
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        @wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            for _literal, field, spec, _conv in string.Formatter().parse(fmt):
                if field is not None and spec:
                    if "{" in spec:
                        raise SecurityError("nested replacement fields in a format spec are not allowed")
                    _check_spec(spec, "a format")
            result = wrapped(*args, **kwargs)
            Budget.size(len(result), "a formatted text")
            return result

        return checked

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        """Refuse at once: an unsafe attribute reached through a filter (map, attr, sort by
        attribute) must not become a silently printed Undefined."""
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


ENV = BudgetedEnvironment()


@lru_cache(maxsize=256)
def compile_template(text: str) -> Template:
    """Parse, route through the budget filters, compile (cached: a send compiles once, not per message)."""
    tree = _Rewrite().visit(ENV.parse(text))
    return ENV.from_string(tree)


def render(text: str, context: dict[str, Any]) -> str:
    """Render ``text`` under a fresh budget; raises BudgetExceeded, SecurityError or the template's error."""
    template = compile_template(text)
    budget = Budget(deadline=time.monotonic() + MAX_SECONDS)
    token = _current.set(budget)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            Budget.size(size, "the output")
            out.append(chunk)
        return "".join(out)
    finally:
        _current.reset(token)


__all__ = ["MAX_CHARS", "MAX_SECONDS", "MAX_STEPS", "BudgetExceeded", "BudgetedEnvironment", "compile_template", "render"]
