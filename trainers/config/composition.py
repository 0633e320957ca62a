"""`composition_error_message`: a value OmegaConf refused while Hydra composed the config, worded like every
other refusal (`invalid_value_message`): the field, what was received, what is allowed and a fix."""

from __future__ import annotations

import dataclasses
from typing import Optional

from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError
from omegaconf.nodes import BooleanNode, EnumNode, FloatNode, IntegerNode

from .fields import invalid_value_message

_TYPE_ALLOWED = {
    BooleanNode: ("true or false", "true"),
    IntegerNode: ("an integer", "1"),
    FloatNode: ("a number", "0.5"),
}


def composition_error_message(error: BaseException) -> Optional[str]:
    """The message for a value OmegaConf refused while Hydra composed the config (outside an enum, of the
    wrong type, or for a key the schema does not have), worded like `validate`'s: the field, what was
    received, what is allowed and a fix. None for any other composition error (e.g. an unknown group
    option: Hydra's own message lists the options)."""
    refusal = error
    while refusal is not None and not isinstance(refusal, (ValidationError, ConfigKeyError, ConfigAttributeError)):
        refusal = refusal.__cause__ or refusal.__context__
    if refusal is None or not refusal.full_key:
        return None
    if isinstance(refusal, (ConfigKeyError, ConfigAttributeError)):
        schema = refusal.object_type
        if not dataclasses.is_dataclass(schema):
            return None
        keys = [item.name for item in dataclasses.fields(schema) if not item.name.startswith("_")]
        parent = refusal.full_key.rpartition(".")[0]
        return (f"Unknown key `{refusal.full_key}`: {parent or 'the job'} ({schema.__name__}) has no `{refusal.key}`. "
                f"Its keys: {', '.join(keys)}. Check the spelling, or choose the group option that has it.")
    node = refusal.child_node
    current = node._value() if node is not None else None  # the value before the refused one
    if isinstance(node, EnumNode):
        choices = [member.name for member in node.enum_type]
        allowed = "one of " + ", ".join(choices) + (", or null" if node._is_optional() else "")
        example = current.name if current is not None else choices[0]
    elif type(node) in _TYPE_ALLOWED:
        allowed, example = _TYPE_ALLOWED[type(node)]
        example = str(current).lower() if isinstance(current, bool) else (example if current is None else str(current))
    else:
        return None
    return invalid_value_message(refusal.full_key, refusal.value, allowed, example)
