"""Names of the objects an entry's ids point at, as their tenant sees them now.

An entry stores ids (``target_id``, ``story_id``, ids inside ``changes`` and ``inputs``);
a reader wants "Security Operations (#1)". ``auditlog`` does not import the models it
names: each app registers its nameable models from its ``AppConfig.ready()``, as it
registers the models it audits (``names.register("team", Team)``). Every lookup is bounded
by the tenant: an id of another tenant's object (or of a deleted one) has no name here and
stays a bare id, so a name never leaks across tenants.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models


@dataclass(frozen=True)
class Nameable:
    """How to find and label the rows of one model for one tenant."""

    target_type: str
    model: type[models.Model]
    label: Callable[[Any], str]
    tenant_field: str
    select_related: tuple[str, ...]


_by_type: dict[str, Nameable] = {}


def register(
    target_type: str,
    model: type[models.Model],
    *,
    label: Callable[[Any], str] = str,
    tenant_field: str = "tenant_id",
    select_related: tuple[str, ...] = (),
) -> None:
    """Let entries name rows of ``model`` (``target_type`` as the catalog spells it).

    ``label`` must never show a secret: it is shown to every reader of the log.
    """
    _by_type[target_type] = Nameable(target_type, model, label, tenant_field, select_related)


def target_type_of(model: type[models.Model]) -> str | None:
    """The target type under which ``model`` is registered, if it is."""
    concrete = model._meta.concrete_model
    return next((n.target_type for n in _by_type.values() if n.model is concrete), None)


def names_of(
    tenant_id: int, target_type: str, ids: Collection[Any] | None = None
) -> dict[str, str]:
    """``{str(id): label}`` of the tenant's rows of ``target_type`` among ``ids`` (all: None).

    Ids that are not whole numbers, or that name no row of this tenant, are left out.
    """
    nameable = _by_type.get(target_type)
    if nameable is None:
        return {}
    rows = nameable.model._default_manager.filter(**{nameable.tenant_field: tenant_id})
    if ids is not None:
        numbers = {int(i) for i in ids if _is_id(i)}
        if not numbers:
            return {}
        rows = rows.filter(pk__in=numbers)
    rows = rows.select_related(*nameable.select_related).order_by("pk")
    return {str(row.pk): nameable.label(row) for row in rows}


def field_target_type(target_type: str, field_name: str) -> str | None:
    """The target type a field of ``target_type``'s model points at (foreign key or m2m)."""
    nameable = _by_type.get(target_type)
    if nameable is None:
        return None
    try:
        field = nameable.model._meta.get_field(field_name)
    except FieldDoesNotExist:  # a field the model had when the entry was written
        return None
    related = getattr(field, "related_model", None)
    return target_type_of(related) if related is not None and field.is_relation else None


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value < 2**63
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 2**63


def field_inputs(entry: Any) -> dict[str, Any]:
    """The ``{"inputs": {field: value}}`` an audited row's entry holds, when it has that shape."""
    inputs = entry.inputs.get("inputs") if isinstance(entry.inputs, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def referenced_ids(entry: Any) -> dict[str, set[Any]]:
    """``{target_type: ids}`` an entry mentions: its target, its story, its related fields."""
    wanted: dict[str, set[Any]] = {}
    if entry.target_type and entry.target_id:
        wanted.setdefault(entry.target_type, set()).add(entry.target_id)
    if entry.story_id:
        wanted.setdefault("story", set()).add(entry.story_id)
    # An input holds a value; a change holds [before, after]. Either is an id or a list of ids.
    mentioned = [(f, [v]) for f, v in field_inputs(entry).items()]
    mentioned += [(f, _listed(pair)) for f, pair in (entry.changes or {}).items()]
    for field, values in mentioned:
        related = field_target_type(entry.target_type, field)
        if related:
            for value in values:
                wanted.setdefault(related, set()).update(_listed(value))
    return wanted


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resolve(tenant_id: int, wanted: dict[str, set[Any]]) -> dict[tuple[str, str], str]:
    """``{(target_type, str(id)): label}`` for every ``{target_type: ids}`` wanted.

    One query per target type, each bounded by the tenant.
    """
    found: dict[tuple[str, str], str] = {}
    for target_type, ids in wanted.items():
        for pk, label in names_of(tenant_id, target_type, ids).items():
            found[(target_type, pk)] = label
    return found
