"""Where the webhook's settings come from: flags, env, the YAML file, each read into a dict of raw
values (strings, or YAML's types) that webhook/settings.py converts and checks.

The forms are those that pydantic-settings read before (its CLI source with kebab-case flags and implicit
boolean flags, its env source with prefix KUBE_ELECTOR_ and `__` for nesting, its YAML source):
- flags: `--listen-port 8443` or `--listen-port=8443`; a group's field `--limits.max-connections 50`, or the
  whole group as a JSON object `--limits '{"max_connections": 50}'` (its fields' flags win over it);
  booleans `--native-sidecar` / `--no-native-sidecar`; a list `--cert-extra-ips 127.0.0.1`, repeated or
  comma-separated (`a,b`, `"a,b",c`) or JSON (`["a","b"]`); `--kubeconfig null` for none; no abbreviations;
- env: `KUBE_ELECTOR_<FIELD>` (any case), a group's field `KUBE_ELECTOR_LIMITS__MAX_CONNECTIONS`, a whole
  group or a list as JSON; variables that name no setting are ignored (the pod's env has others);
- file: a YAML mapping of settings; a group is a nested mapping.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any

import yaml

PREFIX = "KUBE_ELECTOR_"


class SettingsError(ValueError):
    """The settings are invalid; the message names each field and what is wrong."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)  # (field.path, problem)

    @classmethod
    def invalid(cls, problems: Sequence[tuple[str, str]]) -> SettingsError:
        return cls("invalid settings: " + "; ".join(f"{where}: {what}" for where, what in problems), problems)


def fields_of(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """Each field of a settings dataclass with its type (the annotations evaluated, once per class)."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = [(field, hints[field.name]) for field in dataclasses.fields(cls)]
    return _FIELDS[cls]


_FIELDS: dict[type, list[tuple[dataclasses.Field[Any], Any]]] = {}


def _is_list(hint: Any) -> bool:
    return typing.get_origin(hint) is list


# ------------------------------------------------------------------------------------------------ flags


def parse_flags(cls: type, argv: list[str], prog: str) -> tuple[dict[str, Any], str | None]:
    """The flags given (nested dicts for groups) and the --config path, if given. argparse exits 2 for a
    flag that is not one, and 0 after --help."""
    if argv and argv[-1] == "--config":
        raise SettingsError("--config: give the path of a YAML settings file")
    parser = argparse.ArgumentParser(prog=prog, description=(cls.__doc__ or "").strip(), allow_abbrev=False,
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", metavar="PATH", help="the YAML settings file (default: KUBE_ELECTOR_CONFIG)")
    kinds: dict[str, Any] = {}
    _add_flags(parser, parser, cls, "", kinds)
    given = vars(parser.parse_args(argv))
    config = given.pop("config", None)
    if config == "":
        raise SettingsError("--config: give the path of a YAML settings file")
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for dest in sorted(given, key=lambda dest: dest.count(".")):  # a group's JSON first, its fields over it
        hint, raw = kinds[dest], given[dest]
        try:
            if _is_list(hint):
                value: Any = [item for text in raw for item in _list_items(text)]
            elif dataclasses.is_dataclass(hint):
                value = json.loads(raw)
            else:
                value = None if raw == "null" else raw  # none: for `--kubeconfig null`, wrong elsewhere
        except ValueError as exc:
            problems.append((dest, f"not {'JSON' if dataclasses.is_dataclass(hint) else 'a list'}: {exc}"))
            continue
        _put(values, dest.split("."), value)
    if problems:
        raise SettingsError.invalid(problems)
    return values, config


def _add_flags(parser: argparse.ArgumentParser, group: Any, cls: type, prefix: str, kinds: dict[str, Any]) -> None:
    for field, hint in fields_of(cls):
        dest = prefix + field.name
        flag = "--" + dest.replace("_", "-")
        kinds[dest] = hint
        if dataclasses.is_dataclass(hint):
            options = parser.add_argument_group(f"{dest} options")
            options.add_argument(flag, dest=dest, nargs="?", const="{}", metavar="JSON",
                                 help=f"set {dest} from JSON string (default: {{}})")
            _add_flags(parser, options, typing.cast(type, hint), dest + ".", kinds)
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        shown = "null" if default is None else default
        text = f"{field.metadata.get('help', '')} (default: {shown})".lstrip().replace("%", "%%")
        if hint is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, help=text)
        elif _is_list(hint):
            group.add_argument(flag, dest=dest, action="append", metavar="list[str]", help=text)
        else:
            group.add_argument(flag, dest=dest, metavar=_metavar(hint), help=text)


def _metavar(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "{" + ",".join(typing.get_args(hint)) + "}"
    if isinstance(hint, UnionType):
        return "{Path,null}"
    return typing.cast(str, hint.__name__)


def _list_items(text: str) -> list[str]:
    """The items of one list flag: `a`, `a,b`, `"a,b",c`, `[a,b]` or `["a","b"]`; `[]` is none."""
    text = text.strip()
    if text.startswith("[") != text.endswith("]"):
        raise ValueError(f"unbalanced [ ] in {text!r}")
    if text.startswith("["):
        text = text[1:-1].strip()
        if not text:
            return []
    items, start, quoted = [], 0, False
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(text[start:i])
            start = i + 1
    if quoted:
        raise ValueError(f"mismatched quotes in {text!r}")
    items.append(text[start:])
    return [json.loads(item) if len(item) > 1 and item[0] == item[-1] == '"' else item
            for item in (item.strip() for item in items)]


def take_flags(argv: list[str], names: Mapping[str, str], switches: set[str]) -> dict[str, Any]:
    """Removes from `argv` the flags of settings the parser does not know (the REMOVED ones), and returns
    their values: `--name value`, `--name=value`; `--name` / `--no-name` alone for `switches`."""
    found: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        name, has_value, value = argv[i].partition("=")
        key = name[2:].replace("-", "_") if name.startswith("--") else ""
        if key.startswith("no_") and key[3:] in switches and not has_value:  # --no-manage-role-bindings
            found[key[3:]] = False
            del argv[i]
        elif key in names and has_value:
            found[key] = value
            del argv[i]
        elif key in switches:  # --manage-role-bindings alone, as implicit boolean flags were
            found[key] = True
            del argv[i]
        elif key in names:
            found[key] = argv[i + 1] if i + 1 < len(argv) else ""
            del argv[i : i + 2]
        else:
            i += 1
    return found


# -------------------------------------------------------------------------------------------- env, file


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """KUBE_ELECTOR_<NAME>, in any case."""
    wanted = (PREFIX + name).upper()
    return next((value for key, value in environ.items() if key.upper() == wanted), None)


def from_env(cls: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given as KUBE_ELECTOR_<FIELD>[__<FIELD>] (a group or a list alone: JSON)."""
    kinds = {field.name: hint for field, hint in fields_of(cls)}
    found = [(key[len(PREFIX):].lower().split("__"), value) for key, value in environ.items()
             if key.upper().startswith(PREFIX)]
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for path, value in sorted(found, key=lambda item: len(item[0])):  # a group's JSON first
        hint = kinds.get(path[0])
        if hint is None or "" in path or (len(path) > 1 and not dataclasses.is_dataclass(hint)):
            continue  # not a setting
        if len(path) == 1 and (dataclasses.is_dataclass(hint) or _is_list(hint)):
            try:
                value = json.loads(value)
            except ValueError as exc:
                problems.append((path[0], f"not JSON in {PREFIX}{path[0].upper()}: {exc}"))
                continue
        _put(values, path, value)
    if problems:
        raise SettingsError.invalid(problems)
    return values


def read_file(path: str, origin: str) -> dict[str, Any]:
    """The YAML mapping in `path`; SettingsError (one line, naming the file) if it cannot be."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{origin} {path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{origin} {path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{origin} {path}: not YAML: {_one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{origin} {path}: must be a mapping of settings, not a {type(data).__name__}")
    return data


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).replace(' in "<unicode string>"', "")
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


# -------------------------------------------------------------------------------------------------- merge


def _put(values: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(values.get(key), dict):
            values[key] = {}
        values = values[key]
    values[path[-1]] = value


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers, each over the ones before it; mappings (groups) merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged
