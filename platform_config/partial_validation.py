"""The rules of a file that has field errors, checked over the parts that parsed.

Pydantic runs a model's validators (the rules that relate several fields) only when every field of the model is
valid, so one field error would hide the file's other problems until the next round. ``partial_model`` builds the
model a second time from the parts that parsed, with ``INVALID`` standing in for each part that has a field error,
and ``PartialModel.rule_problems`` runs the rules of every model it had to build part by part, one rule at a time.
A rule that reads an invalid part is skipped: whatever it found would follow from the field error already reported.

``INVALID`` refuses every use (attribute, item, comparison, iteration, truth, formatting). Identity tests cannot be
intercepted, so rules compare enum values with ``==`` and ``!=``; ``x is None`` on an invalid part is False, as it is
on a value the file gives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter

from platform_config.models import ConfigProblems

Problems = list[tuple[str, str]]
Loc = tuple[Any, ...]
T = TypeVar("T")


class ReadsInvalidPart(Exception):
    """A rule read a part of the file that failed validation."""


class _Invalid:
    """A part of the file with a field error; any use of it raises ``ReadsInvalidPart``."""

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ReadsInvalidPart

    __getattr__ = __getitem__ = __iter__ = __len__ = __contains__ = __bool__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _refuse  # type: ignore[assignment]
    __str__ = __repr__ = __format__ = __int__ = __float__ = __index__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse


INVALID: Any = _Invalid()


def unless_reads_invalid(check: Callable[[], list[T]]) -> list[T]:
    """What ``check`` finds over a partial model, or nothing when it reads an invalid part (a builtin handed
    ``INVALID`` refuses it with a TypeError)."""
    try:
        return check()
    except (ReadsInvalidPart, TypeError):
        return []


@dataclass(frozen=True)
class PartialModel:
    """A model built from the parts of its data that parsed."""

    #: The model, with ``INVALID`` for each part with a field error.
    model: Any
    #: (dotted field path, model) of each model with a field error inside it, innermost first: pydantic ran none
    #: of their validators.
    rebuilt: list[tuple[str, BaseModel]]

    def rule_problems(self) -> Problems:
        """What the rules of each rebuilt model find, each rule on its own, with the dotted path of its field."""
        problems = []
        for path, model in self.rebuilt:
            for rule in _rules(model):
                problems += [(".".join(p for p in (path, field) if p), message)
                             for field, message in unless_reads_invalid(rule)]
        return problems


def partial_model(model: type[BaseModel], data: dict[str, Any], invalid: Iterable[Loc],
                  context: dict[str, Any]) -> PartialModel:
    """``data`` as ``model`` built part by part, with ``INVALID`` at each location of ``invalid`` (pydantic error
    locations of field errors)."""
    builder = _Builder(context=context, rebuilt=[])
    return PartialModel(model=builder.model(model, data, list(invalid), ""), rebuilt=builder.rebuilt)


@dataclass(frozen=True)
class _Builder:
    context: dict[str, Any]
    rebuilt: list[tuple[str, BaseModel]]

    def part(self, annotation: Any, value: Any, invalid: list[Loc], path: str) -> Any:
        if not invalid:
            return TypeAdapter(annotation).validate_python(value, context=self.context)
        container = _container(annotation)
        if () in invalid or container is None or not isinstance(value, dict):
            return INVALID
        if get_origin(container) is dict:
            item_type = get_args(container)[1]
            return {key: self.part(item_type, item, _below(invalid, key), f"{path}.{key}")
                    for key, item in value.items()}
        return self.model(container, value, invalid, path)

    def model(self, model: type[BaseModel], value: dict[str, Any], invalid: list[Loc], path: str) -> BaseModel:
        """The model's fields built one by one (an unknown key, an error of its own, changes none of them)."""
        fields = {}
        for name, field in model.model_fields.items():
            below = _below(invalid, name)
            typed = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            if name in value:
                fields[name] = self.part(typed, value[name], below, f"{path}.{name}" if path else name)
            elif below:  # a required field left out
                fields[name] = INVALID
        built = model.model_construct(**fields)
        if invalid:
            self.rebuilt.append((path, built))
        return built


def _below(invalid: list[Loc], key: Any) -> list[Loc]:
    return [loc[1:] for loc in invalid if loc[0] == key]


def _members(annotation: Any) -> list[Any]:
    """The types an annotation allows: through ``Annotated`` and ``X | None``."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _container(annotation: Any) -> Any:
    """The ``dict[...]`` or model an annotation holds (their parts can be built one by one), or None."""
    for member in _members(annotation):
        if get_origin(member) is dict or (isinstance(member, type) and issubclass(member, BaseModel)):
            return member
    return None


def _rules(model: BaseModel) -> list[Callable[[], Problems]]:
    """A model's rules: its ``cross_field_rules()`` when it lists them, else each of its model validators."""
    listed = getattr(model, "cross_field_rules", None)
    if listed is not None:
        return listed()
    validators = type(model).__pydantic_decorators__.model_validators.values()
    return [functools.partial(_validator_problems, v.func, model) for v in validators if v.info.mode == "after"]


def _validator_problems(validator: Callable[[Any], Any], model: BaseModel) -> Problems:
    try:
        validator(model)
    except ConfigProblems as error:
        return error.problems
    except ValueError as error:
        return [("", str(error))]
    return []
