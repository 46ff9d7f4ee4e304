"""The model's shared machinery: the schema numbers and the choices a goal may take, the bounds
and checks a field must pass, and (de)serialising frozen dataclasses to plain data.

Dicts carry a ``schema`` number at the top level; ``from_dict`` refuses a dict of another schema
or of the wrong shape with a :class:`UserError` that names the field, so a bad ``--facts`` file is
one clear line. Fields whose type is ``Annotated[..., Bounds(...)]`` or ``Annotated[..., Check(...)]``
are also refused outside their sane range (memory 0, a negative CPU count, a 400-digit integer,
an address that is not one), so the planner only ever sees values it can compute with.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from provision.errors import UserError, shown
from provision.rules.addresses import parse_ip
from provision.rules.system import check_zram_algorithm
from provision.units import MIB

FACTS_SCHEMA = 1


PLAN_SCHEMA = 1


#: Config targets kprov knows how to plan for (``make <target>``).
TARGETS = (
    "defconfig",
    "localmodconfig",
    "olddefconfig",
    "tinyconfig",
    "allnoconfig",
    "allmodconfig",
    "allyesconfig",
)


COMPILERS = ("auto", "gcc", "clang")


DEBUG_INFO = ("auto", "none", "dwarf", "btf")


LTO = ("auto", "none", "thin", "full")


#: Distro families kprov has package lists and zram tooling for.
FAMILIES = ("debian", "redhat", "arch", "suse", "alpine")


@dataclass(frozen=True)
class Bounds:
    """``Annotated[int, Bounds(1, 4096)]``: the value must lie in ``low..high`` (inclusive)."""

    low: float
    high: float
    expected: str = ""  # how the message states the range, when the numbers read badly

    def __call__(self, value: Any, where: str) -> Any:
        if not self.low <= value <= self.high:
            expected = self.expected or f"{self.low}..{self.high}"
            raise UserError(f"{where}: {shown(value)} is out of range (expected {expected})")
        return value


@dataclass(frozen=True)
class Check:
    """``Annotated[str, Check(fn)]``: ``fn(value, where)`` returns the value (normalised) or raises UserError."""

    fn: Callable[[Any, str], Any]

    def __call__(self, value: Any, where: str) -> Any:
        return self.fn(value, where)


def _address(value: str, where: str) -> str:

    return parse_ip(value, where)


def _compressor(value: str, where: str) -> str:

    return check_zram_algorithm(value, where)


#: Linux's NR_CPUS tops out at 8,192 today; 65,536 leaves room and still refuses nonsense.
MAX_CPUS = 1 << 16


#: The kernel's own "no limit" for memory and disk sizes is just below 2^63.
MAX_BYTES = (1 << 63) - 1


#: Less RAM than this is not a Linux host that builds anything.
MIN_MEMORY_BYTES = 16 * MIB


CPUS = Bounds(1, MAX_CPUS)


BYTES = Bounds(0, MAX_BYTES, "a byte count from 0 to 2^63-1")


MEMORY = Bounds(MIN_MEMORY_BYTES, MAX_BYTES, "bytes, at least 16 MiB and below 2^63")


CGROUP_MEMORY = Bounds(MIB, MAX_BYTES, "bytes, at least 1 MiB and below 2^63, or null for no limit")


#: CPUs worth of cgroup quota: the kernel's smallest quota is 1 ms per 1 s period.
QUOTA = Bounds(0.001, float(MAX_CPUS), "0.001..65536 CPUs, or null for no quota")


ADDRESS = Check(_address)


#: A zram compressor name: the planner may write one into /etc/default/zramswap.
COMPRESSOR = Check(_compressor)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert plain JSON data ``value`` to type ``tp``; raise UserError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        value = _convert(args[0], value, where)
        if value is not None:
            for constraint in tp.__metadata__:
                if isinstance(constraint, (Bounds, Check)):
                    value = constraint(value, where)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"{where}: unexpected null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object, got {type(value).__name__}")
        return _from_plain(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true/false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise UserError(f"{where}: {shown(value)} is out of range") from None
        if not math.isfinite(number):
            raise UserError(f"{where}: expected a finite number, got {shown(value)}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {shown(value)}")
        return value
    return value


def _at(where: str) -> str:
    return f"{where}: " if where else ""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _from_plain(cls: type, data: dict, where: str) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}" if where else f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{_at(where)}missing field '{f.name}'")
    return cls(**kwargs)


class Serialisable:
    def to_dict(self) -> dict:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None):
        """``data`` as this class; errors name the field as ``where.field`` (just ``field`` when
        ``where`` is "", for a caller that names the file itself)."""
        where = cls.__name__ if where is None else where
        if not isinstance(data, dict):
            raise UserError(f"{_at(where)}expected an object, got {type(data).__name__}")
        schema = getattr(cls, "SCHEMA", None)
        if schema is not None and data.get("schema", schema) != schema:
            raise UserError(f"{_at(where)}schema {shown(data.get('schema'))} is not supported (expected {schema})")
        return _from_plain(cls, data, where)

    def checked(self, where: str | None = None):
        """This object again, through :meth:`from_dict`'s checks: for one built in code from foreign data."""
        return type(self).from_dict(self.to_dict(), where)
