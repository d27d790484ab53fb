"""Help text that reads like a Unix command's.

Typer (0.2x) labels every parameter with its Python type in help: `--help
<bool>`, `--port <int>`, `users create [OPTIONS] {username}`. Flags need no
label, a value is named for what it is (`--port PORT`), a choice lists its
values (`--role [viewer|operator|admin]`), an argument is upper case.
`tests/cli/test_help.py` reads every command's help, so a Typer release that
changes these hooks fails there, not in front of a user."""

from __future__ import annotations

from typing import Any

from typer import core


def _choices(param: Any) -> str | None:
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    return None


def _option_label(self: Any, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    if self.metavar is not None:
        return str(self.metavar)
    label = _choices(self) or str(self.name or "value").upper()
    return label + "..." if self.nargs != 1 else label  # a repeatable one says so in its help


def _argument_name(self: Any) -> str:
    return str(self.metavar or (self.name or "arg").upper())


def _argument_usage(self: Any) -> str:
    name = _argument_name(self)
    name = name if self.required else f"[{name}]"
    return name + "..." if self.nargs != 1 else name


def install_plain_help() -> None:
    core.TyperOption.display_type_rich = _option_label  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
    core.TyperArgument.display_name_raw = property(_argument_name)  # type: ignore[method-assign,assignment]
    core.TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
