"""The launch form, generated from the config models (no FastAPI here).

`form_for(RunConfig)` walks the pydantic model: each sub-model is a section (a fieldset with the
model's description), each other field a leaf with a kind that picks its widget:

    bool                 -> select true/false
    Literal / Enum       -> select of the choices
    int, float           -> text, converted when it parses (else pydantic reports the field)
    str, Path            -> text
    anything else        -> a small textarea holding YAML (lists, dicts, unions of types)

`X | None` is unwrapped (the field is nullable: an empty text is None); a nullable sub-model is
an optional section with an "include" toggle. A form is filled from a preset's raw dict (the
YAML of a config file or of an earlier run): the preset's value where it has one, else the
field's default. `apply_form` writes back only what the user changed, so defaults are never
materialised into the config. Input names: `f.<path>` for fields, `s.<path>` for toggles.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import AliasChoices, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from geomas.panel.runs import FieldErrors

Kind = Literal["bool", "choice", "int", "float", "text", "yaml"]

FIELD_PREFIX = "f."
SECTION_PREFIX = "s."
ON, OFF = "on", "off"

#: top-level sections each pipeline uses most: shown open on the launch form
PIPELINE_SECTIONS: dict[str, tuple[str, ...]] = {
    "data": ("project", "data"),
    "training": ("training", "training.sft"),
    "retrain-check": ("retrain",),
}


@dataclass(frozen=True)
class FormField:
    """One leaf of the form: a config field edited as text."""

    path: str
    keys: tuple[str, ...]
    kind: Kind
    help: str
    required: bool
    nullable: bool
    default_text: str
    choices: tuple[str, ...] = ()
    choice_values: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        """The key as a config file spells it."""
        return self.keys[0]

    @property
    def name(self) -> str:
        """The input's name in the HTML form."""
        return FIELD_PREFIX + self.path

    def text(self, value: Any) -> str:
        """A config value as the text the form shows for it."""
        if value is None:
            return ""
        if self.kind == "yaml":
            return yaml_text(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, enum.Enum):
            return str(value.value)
        return str(value)

    def parse(self, text: str) -> Any:
        """The config value for a submitted text; left as text where it does not convert.

        Raises:
            yaml.YAMLError: a YAML field whose text does not parse.
        """
        text = _newlines(text)
        stripped = text.strip()
        if self.nullable and not stripped:
            return None
        if self.kind == "yaml":
            return yaml.safe_load(text)
        if self.kind == "bool":
            return {"true": True, "false": False}.get(stripped.lower(), text)
        if self.kind == "choice":
            return dict(zip(self.choices, self.choice_values, strict=True)).get(stripped, text)
        if self.kind in ("int", "float"):
            for convert in (int, float) if self.kind == "float" else (int,):
                try:
                    return convert(stripped)
                except ValueError:
                    continue
        return text


@dataclass(frozen=True)
class FormSection:
    """A sub-model: its own fields, then its sub-sections; the root has path ""."""

    path: str
    keys: tuple[str, ...]
    help: str
    required: bool
    optional: bool
    fields: tuple[FormField, ...]
    sections: tuple[FormSection, ...]

    @property
    def label(self) -> str:
        """The key as a config file spells it."""
        return self.keys[0] if self.keys else ""

    @property
    def name(self) -> str:
        """The name of its include toggle (optional sections)."""
        return SECTION_PREFIX + self.path

    def leaves(self) -> list[FormField]:
        """Every field of this section and those below it, in form order."""
        out = list(self.fields)
        for sub in self.sections:
            out.extend(sub.leaves())
        return out

    def all_sections(self) -> list[FormSection]:
        """The sections below this one, depth first."""
        out: list[FormSection] = []
        for sub in self.sections:
            out.append(sub)
            out.extend(sub.all_sections())
        return out


def yaml_text(value: Any) -> str:
    """A value as short YAML: flow style for the innermost lists and mappings."""
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=None,
                          width=90)
    if text.endswith("\n...\n"):  # a plain scalar document
        text = text[: -len("...\n")]
    return text.rstrip("\n")


@functools.cache
def form_for(model: type[BaseModel]) -> FormSection:
    """The form of a config model: sections and fields from its pydantic fields."""
    return _section(model, "", (), "", required=True, optional=False)


def _section(model: type[BaseModel], path: str, keys: tuple[str, ...], help_text: str,
             required: bool, optional: bool) -> FormSection:
    fields: list[FormField] = []
    sections: list[FormSection] = []
    for name, info in model.model_fields.items():
        accepted = _keys(model, name, info)
        sub_path = f"{path}.{accepted[0]}" if path else accepted[0]
        args, nullable = _unwrap(info.annotation)
        if len(args) == 1 and _is_model(args[0]):
            sub: type[BaseModel] = args[0]
            sections.append(_section(sub, sub_path, accepted, info.description or _doc(sub),
                                     required=info.is_required(), optional=nullable))
        else:
            fields.append(_field(info, sub_path, accepted, args, nullable))
    return FormSection(path=path, keys=keys, help=help_text, required=required,
                       optional=optional, fields=tuple(fields), sections=tuple(sections))


def _field(info: FieldInfo, path: str, keys: tuple[str, ...], args: list[Any],
           nullable: bool) -> FormField:
    kind: Kind = "yaml"
    values: list[Any] = []
    if args and all(get_origin(a) is Literal for a in args):
        kind, values = "choice", [v for a in args for v in get_args(a)]
    elif len(args) == 1:
        only = args[0]
        if only is bool:
            kind, values = "bool", [True, False]
        elif isinstance(only, type) and issubclass(only, enum.Enum):
            kind, values = "choice", [m.value for m in only]
        elif only is int:
            kind = "int"
        elif only is float:
            kind = "float"
        elif only is str or (isinstance(only, type) and issubclass(only, PurePath)):
            kind = "text"
    field = FormField(path=path, keys=keys, kind=kind, help=info.description or "",
                      required=info.is_required(), nullable=nullable, default_text="",
                      choices=tuple("true" if v is True else "false" if v is False else str(v)
                                    for v in values), choice_values=tuple(values))
    if info.is_required():
        return field
    default = info.get_default(call_default_factory=True, validated_data={})
    if kind == "yaml":  # tuples, sub-models in lists and dicts: as plain YAML values
        default = TypeAdapter(info.annotation).dump_python(default, mode="json")
    return dataclasses.replace(field, default_text=field.text(default))


def _keys(model: type[BaseModel], name: str, info: FieldInfo) -> tuple[str, ...]:
    """The keys a config file may use for a field: its validation aliases, else its name."""
    alias = info.validation_alias
    if isinstance(alias, str):
        keys = [alias]
    elif isinstance(alias, AliasChoices):
        keys = [c for c in alias.choices if isinstance(c, str)]
    else:
        keys = [info.alias or name]
    config = model.model_config
    if name not in keys and (config.get("populate_by_name") or config.get("validate_by_name")):
        keys.append(name)
    return tuple(keys or [name])


def _unwrap(annotation: Any) -> tuple[list[Any], bool]:
    """The types of a union (or the one type), without None; and whether None was one."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args: list[Any] = []
        nullable = False
        for arg in get_args(annotation):
            inner, inner_nullable = _unwrap(arg) if arg is not type(None) else ([], True)
            args.extend(inner)
            nullable = nullable or inner_nullable
        return args, nullable
    return [annotation], False


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _doc(model: type[BaseModel]) -> str:
    doc = inspect.cleandoc(model.__doc__ or "")
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lookup(data: Any, keys: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, value) of the first of `keys` that a mapping holds."""
    if isinstance(data, Mapping):
        for key in keys:
            if key in data:
                return True, data[key]
    return False, None


# ---- filling and reading back --------------------------------------------------------------
def initial_values(form: FormSection, raw: Any) -> dict[str, str]:
    """Input name -> text for a preset's raw dict: its values, else the defaults."""
    out: dict[str, str] = {}
    _fill(form, raw if isinstance(raw, Mapping) else {}, out)
    return out


def _fill(section: FormSection, data: Mapping[str, Any] | None, out: dict[str, str]) -> None:
    for field in section.fields:
        found, value = _lookup(data, field.keys)
        out[field.name] = field.text(value) if found else field.default_text
    for sub in section.sections:
        _found, value = _lookup(data, sub.keys)
        if sub.optional:
            out[sub.name] = ON if value is not None else OFF
        _fill(sub, value if isinstance(value, Mapping) else None, out)


def shown_values(form: FormSection, raw: Any, submitted: Mapping[str, str]) -> dict[str, str]:
    """What the form shows again after a refused submit: the submitted texts over the preset's."""
    values = initial_values(form, raw)
    values.update({k: v for k, v in submitted.items()
                   if k.startswith((FIELD_PREFIX, SECTION_PREFIX))})
    return values


def apply_form(form: FormSection, raw: Any, submitted: Mapping[str, str]) -> dict[str, Any]:
    """The preset's raw dict with the user's changes: only fields whose text was changed.

    An input missing from `submitted` is unchanged; a toggle `s.<path>` is `on` or `off` (an
    optional section turned off loses its key; turned on, it is created). Required sub-model
    sections missing under an included section are added empty, so that pydantic reports
    their missing fields by name.

    Raises:
        FieldErrors: a YAML field whose text does not parse (one entry per such field).
    """
    before = initial_values(form, raw)
    new: dict[str, Any] = copy.deepcopy(dict(raw)) if isinstance(raw, Mapping) else {}
    errors: list[dict[str, str]] = []
    _apply(form, [], new, before, submitted, errors)
    if errors:
        raise FieldErrors("the launch form", errors)
    _add_required(form, new)
    return new


def _apply(section: FormSection, chain: list[FormSection], root: dict[str, Any],
           before: Mapping[str, str], submitted: Mapping[str, str],
           errors: list[dict[str, str]]) -> None:
    for field in section.fields:
        text = submitted.get(field.name)
        if text is None or _newlines(text).strip() == before[field.name].strip():
            continue
        try:
            value = field.parse(text)
        except yaml.YAMLError as exc:
            errors.append({"field": field.path, "message": f"not valid YAML: {exc}"})
            continue
        parent = _container(root, chain)
        parent[_spelling(parent, field.keys)] = value
    for sub in section.sections:
        if sub.optional:
            state = submitted.get(sub.name)
            was_on = before[sub.name] == ON
            if (state == ON) if state is not None else was_on:
                if not was_on:
                    _container(root, [*chain, sub])  # newly included: create its mapping
            else:
                if was_on:
                    parent = _container(root, chain)
                    parent.pop(_spelling(parent, sub.keys), None)
                continue
        _apply(sub, [*chain, sub], root, before, submitted, errors)


def _spelling(data: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The key a mapping already uses for a field, else the field's first accepted key."""
    return next((k for k in keys if k in data), keys[0])


def _container(root: dict[str, Any], chain: list[FormSection]) -> dict[str, Any]:
    """The mapping of the last section in `chain`, created (and its parents) where missing."""
    here = root
    for section in chain:
        key = _spelling(here, section.keys)
        if not isinstance(here.get(key), dict):
            here[key] = {}
        here = here[key]
    return here


def _add_required(section: FormSection, data: dict[str, Any]) -> None:
    for sub in section.sections:
        key = _spelling(data, sub.keys)
        if sub.required and key not in data:
            data[key] = {}
        if isinstance(data.get(key), dict):
            _add_required(sub, data[key])


# ---- errors --------------------------------------------------------------------------------
def field_for_error(form: FormSection, error_field: str) -> str | None:
    """The path of the deepest form field at or above a dotted error location, or None.

    "data.qa.templates.geology.0" -> "data.qa.templates"; an error on a whole section (or on
    a key that is no field) has no field.
    """
    found = _locate(form, error_field)
    return found[0] if found is not None else None


def _locate(form: FormSection, error_field: str) -> tuple[str, str] | None:
    """(field path, the rest of the location below it) for an error location, or None."""
    section = form
    parts = error_field.split(".")
    for i, part in enumerate(parts):
        field = next((f for f in section.fields if part in f.keys), None)
        if field is not None:
            return field.path, ".".join(parts[i + 1:])
        sub = next((s for s in section.sections if part in s.keys), None)
        if sub is None:
            return None
        section = sub
    return None


def place_errors(form: FormSection, errors: list[dict[str, str]]
                 ) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Errors split into (field path -> message, the rest) for showing them on the form."""
    on_fields: dict[str, str] = {}
    rest: list[dict[str, str]] = []
    for error in errors:
        found = _locate(form, error["field"])
        if found is None:
            rest.append(error)
            continue
        path, below = found
        message = f"{below}: {error['message']}" if below else error["message"]
        on_fields[path] = f"{on_fields[path]}; {message}" if path in on_fields else message
    return on_fields, rest


def open_sections(form: FormSection, pipeline: str, error_paths: list[str]) -> set[str]:
    """Sections shown open: those the pipeline uses most, and those holding an error."""
    shown = set(PIPELINE_SECTIONS.get(pipeline, ()))
    for path in error_paths:
        parts = path.split(".")
        shown.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return shown & {s.path for s in form.all_sections()}
