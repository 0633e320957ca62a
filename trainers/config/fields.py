"""What one field of the job config may hold: a value from a fixed set (`Choice`), or one its own rule accepts.

A field's rule sits beside it in its schema (`rule(...)`, or `checked(...)` for a message `rule` cannot word) and
`check_fields` runs the rules over a composed config. A value outside them raises `ConfigError`, whose message
names the field, the value received, what is allowed and a fix (`invalid_value_message`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from enum import StrEnum
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value is outside what the job accepts. The message names field, value and fix."""


class Choice(StrEnum):
    """A value from a fixed set: equal to its string, and shown as one in messages."""

    def __repr__(self) -> str:
        return repr(self.value)


CHECK = "check"
FieldCheck = Callable[[str, Any], None]  # (the field's full key, its value): raises ConfigError


def refuse(field_name: str, value: Any, allowed: str, example: str) -> None:
    raise ConfigError(invalid_value_message(field_name, value, allowed, example))


def invalid_value_message(field_name: str, value: Any, allowed: str, example: str) -> str:
    return (
        f"Invalid value for `{field_name}`: received {value!r}. Allowed: {allowed}. "
        f"Fix it on the command line or in the config, e.g. `{field_name}={example}`."
    )


def rule(default: Any, test: Callable[[Any], bool], allowed: str, example: str) -> Any:
    """A dataclass field whose value must pass `test`; `allowed` and `example` (as typed on the command
    line) make the message. null is never tested: OmegaConf refuses it where the field is not Optional."""

    def check(key: str, value: Any) -> None:
        if not test(value):
            refuse(key, value, allowed, example)

    return checked(default, check)


def checked(default: Any, check: FieldCheck) -> Any:
    """A dataclass field with a check of its own (for messages `rule` cannot word)."""
    return field(default=default, metadata={CHECK: check})


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: _integer(value) and value >= low


def positive(value: Any) -> bool:
    return value > 0


def fraction(value: Any) -> bool:
    return 0.0 < value < 1.0


def in_unit_interval(value: Any) -> bool:
    return 0.0 <= value < 1.0


AT_LEAST_1 = "an integer of at least 1"
IN_UNIT_INTERVAL = "a number in [0, 1)"
FRACTION = "a number strictly between 0 and 1"


def check_fields(node: DictConfig, prefix: str = "") -> None:
    """Run the rule each field declares in its schema (see `rule`), over `node` and every node below it."""
    schema = OmegaConf.get_type(node)
    checks = {}
    if dataclasses.is_dataclass(schema):
        checks = {item.name: item.metadata[CHECK] for item in dataclasses.fields(schema) if CHECK in item.metadata}
    for key in node:
        value = node[key]
        if isinstance(value, DictConfig):
            check_fields(value, f"{prefix}{key}.")
        elif key in checks and value is not None:
            checks[key](f"{prefix}{key}", value)
