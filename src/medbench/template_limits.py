"""What one render of an untrusted template may allocate. Jinja's sandbox keeps a template from reaching Python
objects, not from asking one C call for gigabytes: ``q.ljust(6000000000)`` or ``'%02000000000d' % 1`` allocate before
any check after the call runs, and ``str()`` of a list that holds one big list a thousand times is a thousand copies.
Here each operation that can make a string much larger than its inputs (a width, a repeat count, a join, a format,
the text of a list, the render's output) is checked against MAX_RENDERED_CHARS before it runs."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, MappingView, Sequence, Set
from typing import Any, Callable

from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum

MAX_RENDERED_CHARS = 1_000_000
_MAX_DEPTH = 100
_MAX_BITS = 100_000  # an integer of ~30k digits: past that, each * or ** takes seconds inside one C call


def text_size(value: Any, budget: int = MAX_RENDERED_CHARS) -> int:
    """About how many characters ``str(value)`` makes, counted until past ``budget``. Each reference counts (a list
    holding one 1 MB list a thousand times is 1 GB of text in 1 MB of memory); each object is walked once."""
    memo: dict[int, int] = {}

    def size(obj: Any, depth: int) -> int:
        if isinstance(obj, str):
            return len(obj)
        if isinstance(obj, (bytes, bytearray)):
            return 4 * len(obj) + 3
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj.bit_length() // 3 + 2
        if id(obj) in memo:
            return memo[id(obj)]
        if isinstance(obj, Namespace):
            items: Any = [object.__getattribute__(obj, "_Namespace__attrs")]
        elif isinstance(obj, Mapping):
            items = [part for pair in obj.items() for part in pair]
        elif isinstance(obj, (MappingView, Set)) or (isinstance(obj, Sequence) and not isinstance(obj, range)):
            items = obj
        else:
            return 64  # a number, a range, a function, an undefined: a short repr
        if depth > _MAX_DEPTH:
            raise SecurityError(f"a value nests more than {_MAX_DEPTH} levels deep")
        memo[id(obj)] = 8  # a value that holds itself prints as [...]
        total = 2
        for item in items:
            total += size(item, depth + 1) + 2
            if total > budget:
                break
        memo[id(obj)] = total
        return total

    return size(value, 0)


def _refuse_past(what: str, size: int) -> None:
    if size > MAX_RENDERED_CHARS:
        raise SecurityError(f"{what} would make about {size} characters (more than {MAX_RENDERED_CHARS})")


def _arg(args: list, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _digits(text: str) -> int:
    return int(text[:18])  # at most 18 digits: int() of 5000 digits raises


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    try:
        hits = len(text) + 1 if not old else text.count(old)
        hits = min(hits, count) if isinstance(count, int) and count >= 0 else hits
        return len(text) + hits * max(len(new) - len(old), 0)
    except TypeError:
        return 0  # the call itself raises


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")


def _check_percent(fmt: Any, values: Any) -> None:
    """``fmt % values``: each conversion's width and precision, plus the text of the largest value per conversion."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else str(fmt)
    positional = list(values) if isinstance(values, tuple) else [values]
    given = list(values.values()) if isinstance(values, Mapping) else positional
    largest = max((text_size(value) for value in given), default=0)
    total, index = len(text), 0
    for width, precision, kind in _PERCENT.findall(text):
        if kind == "%":
            continue
        for part in (width, precision):
            if part == "*":
                total += _int(positional[index] if index < len(positional) else 0)
                index += 1
            elif part:
                total += _digits(part)
        total += largest
        index += 1
    _refuse_past("formatting with %", total)


def _check_format(fmt: str, values: list) -> None:
    """``fmt.format(*values)``: as _check_percent; a nested width (``{:{w}}``) may be the largest integer given."""
    largest = max((text_size(value) for value in values), default=0)
    widest = max((_int(value) for value in values), default=0)
    total = len(fmt)
    try:
        fields = [(field, spec) for _, field, spec, _ in string.Formatter().parse(fmt) if field is not None]
    except ValueError:
        return  # the call itself raises
    for _, spec in fields:
        total += largest
        if "{" in (spec or ""):
            total += 2 * widest
            continue
        width, precision = _SPEC.match(spec or "").groups()
        total += (_digits(width) if width else 0) + (_digits(precision) if precision else 0)
    _refuse_past("str.format", total)


def _check_call(obj: Any, args: list, kwargs: dict) -> None:
    """Methods and globals whose output is sized by an argument, checked before they run."""
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(owner, (str, bytes)):
        if name in ("ljust", "rjust", "center", "zfill"):
            _refuse_past(name, _int(_arg(args, kwargs, 0, "width")))
        elif name == "expandtabs":
            tab = b"\t" if isinstance(owner, bytes) else "\t"
            _refuse_past(name, len(owner) + owner.count(tab) * _int(_arg(args, kwargs, 0, "tabsize", 8)))
        elif name == "replace" and len(args) >= 2:
            _refuse_past(name, _replaced_size(owner, *args[:2], _arg(args, kwargs, 2, "count", -1)))
        elif name == "join" and args:
            args[0] = list(args[0])  # a generator is read once: checked here, joined below
            _refuse_past(name, len(owner) * max(len(args[0]) - 1, 0) + text_size(args[0]))
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
            _refuse_past(name, len(owner) * longest)
    elif isinstance(owner, int) and name == "to_bytes":
        _refuse_past(name, _int(_arg(args, kwargs, 0, "length", 1)))
    elif obj is generate_lorem_ipsum:
        _refuse_past("lipsum", 12 * _int(_arg(args, kwargs, 0, "n", 5)) * _int(_arg(args, kwargs, 3, "max", 100)))


# --- filters: each checked before it runs; none is run at compile time ----------------------------------------------

def _as_text(args: list, kwargs: dict) -> None:
    """A filter that makes text of its value (str(), escape, JSON): a non-string's text must fit."""
    if args and not isinstance(args[0], str):
        _refuse_past("the text of a value", text_size(args[0]))


def _lines(args: list) -> int:
    return args[0].count("\n") + 1 if args and isinstance(args[0], str) else 1


def _check_indent(args: list, kwargs: dict) -> None:
    width = _arg(args, kwargs, 1, "width", 4)
    width = len(width) if isinstance(width, str) else _int(width)
    _refuse_past("indent", text_size(args[0] if args else "") + _lines(args) * width)


def _check_wordwrap(args: list, kwargs: dict) -> None:
    wrap = _arg(args, kwargs, 3, "wrapstring")
    if args and isinstance(args[0], str) and isinstance(wrap, str):
        width = max(_int(_arg(args, kwargs, 1, "width", 79)), 1)
        _refuse_past("wordwrap", len(args[0]) + (len(args[0]) // width + _lines(args)) * len(wrap))


def _check_join(args: list, kwargs: dict) -> None:
    if args:
        args[0] = list(args[0])
        glue = _arg(args, kwargs, 1, "d", "")
        _refuse_past("join", text_size(glue) * max(len(args[0]) - 1, 0) + text_size(args[0]))


def _check_sum(args: list, kwargs: dict) -> None:
    start = _arg(args, kwargs, 2, "start", 0)
    if args and not isinstance(start, (int, float)):  # lists or strings: the sum is their concatenation
        args[0] = list(args[0])
        _refuse_past("sum", text_size(args[0]) + text_size(start))


def _check_replace(args: list, kwargs: dict) -> None:
    old, new = _arg(args, kwargs, 1, "old", ""), _arg(args, kwargs, 2, "new", "")
    _refuse_past("the text of a value", text_size(old) + text_size(new))  # the filter makes str() of both
    if args and isinstance(args[0], str):
        _refuse_past("replace", _replaced_size(args[0], str(old), str(new), _arg(args, kwargs, 3, "count")))


def _check_urlize(args: list, kwargs: dict) -> None:
    if args and isinstance(args[0], str):
        given = (_arg(args, kwargs, 4, "rel"), _arg(args, kwargs, 3, "target"))
        extra = sum(len(value) for value in given if isinstance(value, str))
        _refuse_past("urlize", 2 * len(args[0]) + len(args[0].split()) * (extra + 64))


def _count(name: str, argument: str) -> Callable[[list, dict], None]:
    def check(args: list, kwargs: dict) -> None:  # how many items (or lists) a filter makes
        _refuse_past(f"{name}({argument})", _int(_arg(args, kwargs, 1, argument)))
    return check


_CHECKS: dict[str, Callable[[list, dict], None]] = {
    "center": lambda a, k: _refuse_past("center", _int(_arg(a, k, 1, "width", 80))),
    "indent": _check_indent, "wordwrap": _check_wordwrap, "join": _check_join, "sum": _check_sum,
    "urlize": _check_urlize, "batch": _count("batch", "linecount"),
    "slice": _count("slice", "slices"), "replace": _check_replace,
    "format": lambda a, k: _check_percent(a[0], k or tuple(a[1:])),
}
_TEXT_FILTERS = {"capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "upper", "title",
                 "trim", "striptags", "pprint", "replace", "safe", "string", "tojson", "truncate", "urlencode",
                 "urlize", "wordcount", "wordwrap", "xmlattr"}


def _bounded_filter(name: str, original: Callable) -> Callable:
    passes = _PassArg.from_obj(original)
    checks = [check for check in (_as_text if name in _TEXT_FILTERS else None, _CHECKS.get(name)) if check]

    def bounded(context: Any, *given: Any, **kwargs: Any) -> Any:
        args = list(given)
        for check in checks:
            check(args, kwargs)
        head = {_PassArg.context: (context,), _PassArg.eval_context: (context.eval_ctx,),
                _PassArg.environment: (context.environment,)}.get(passes, ())
        return original(*head, *args, **kwargs)

    bounded.jinja_pass_arg = _PassArg.context  # type: ignore[attr-defined]  (never run at compile time)
    return bounded


class _BoundedFilters(dict):
    """The sandbox's filters, each bounded, also those added later (``filters['regex_replace'] = ...``)."""

    def __init__(self, filters: dict[str, Callable]):
        super().__init__()
        for name, function in filters.items():
            self[name] = function

    def __setitem__(self, name: str, function: Callable) -> None:
        super().__setitem__(name, _bounded_filter(name, function))


class _BoundedCodeGenerator(CodeGenerator):
    @optimizeconst
    def visit_Concat(self, node: Any, frame: Any) -> None:
        """Jinja's ``a ~ b``, with the parts' text checked before str() of each runs."""
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"{join}(environment.checked_parts((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")


def _checked_output(value: Any) -> Any:
    if not isinstance(value, str):
        _refuse_past("printing a value", text_size(value))
    return value


def _bounded_concat(parts: Any) -> str:
    kept, total = [], 0
    for part in parts:
        total += len(part)
        _refuse_past("the template", total)
        kept.append(part)
    return "".join(kept)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**", "+", "%"])
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_concat)  # the render's output, and every macro's and block's

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, finalize=_checked_output, **kwargs)
        self.filters = _BoundedFilters(self.filters)

    @staticmethod
    def checked_parts(parts: tuple) -> tuple:
        _refuse_past("joining with ~", sum(text_size(part) for part in parts))
        return parts

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sized = (str, bytes, list, tuple)
        if operator == "*" and isinstance(left, sized) != isinstance(right, sized):
            items, times = (left, right) if isinstance(left, sized) else (right, left)
            if isinstance(times, int) and len(items) * times > MAX_RENDERED_CHARS:
                raise SecurityError(f"repeating a sequence {times} times makes more than {MAX_RENDERED_CHARS} items")
            if isinstance(times, int) and not isinstance(items, (str, bytes)):
                _refuse_past(f"repeating a sequence {times} times", text_size(items) * times)
        elif operator == "*" and isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _MAX_BITS:
                raise SecurityError(f"multiplying a {left.bit_length()}-bit number is too large to compute")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 \
                and (abs(right) > 1000 or left.bit_length() * abs(right) > _MAX_BITS):
            shown = left if left.bit_length() < 64 else f"a {left.bit_length()}-bit number"
            raise SecurityError(f"the power {shown} ** {right} is too large to compute")
        elif operator == "+" and isinstance(left, sized) and isinstance(right, sized):
            _refuse_past("joining two values with +", text_size(left) + text_size(right))
        elif operator == "%" and isinstance(left, (str, bytes)):
            _check_percent(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        given = list(args)
        _check_call(obj, given, kwargs)
        result = super().call(context, obj, *given, **kwargs)
        owner = getattr(obj, "__self__", None)
        if isinstance(result, (str, bytes)) and len(result) > len(owner if isinstance(owner, (str, bytes)) else ""):
            _refuse_past(f"{getattr(obj, '__name__', 'a call')}()", len(result))  # stops x.hex().encode().hex()...
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt, by_name = value.__self__, value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            values = list(args[0].values()) if by_name and args and isinstance(args[0], Mapping) else \
                [*args, *kwargs.values()]
            _check_format(str(fmt), values)
            return wrapper(*args, **kwargs)

        return bounded
