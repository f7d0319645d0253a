"""The explicit list of audited models and how their changes map to operations: plain data.

Each audited model is audited from its own app (``AppConfig.ready``) through
``auditlog.signals.audit``, which adds it here and connects the capture receivers. The
receivers and the audited QuerySet read this list; it imports neither of them.
``auditlog`` never imports the models it audits.
"""

import copy
import datetime
import decimal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import models

from .operations import OPERATIONS
from .redaction import REDACTED, is_secret_key, to_json

OperationFor = str | Callable[[Any], str]

# Field values that cannot change in place: a snapshot may keep them without a copy.
_IMMUTABLE = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        str,
        bytes,
        decimal.Decimal,
        uuid.UUID,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
    }
)


@dataclass(frozen=True)
class AuditedModel:
    """How one model is audited."""

    model: type[models.Model]
    target_type: str
    # ``None``: creating a row is no operation, only its later changes are (a row that is
    # created with its defaults when first needed, such as a tenant's export settings).
    create: str | None
    update: str
    delete: str | None
    field_operations: dict[str, OperationFor] = field(default_factory=dict)
    secret_fields: frozenset[str] = frozenset()
    exclude_fields: frozenset[str] = frozenset()
    m2m_fields: tuple[str, ...] = ()
    # Operations that, when a change includes them, stand for the whole change (a removal
    # that also deactivates and locks out is one ``UserDeletion``, not three entries).
    exclusive_operations: frozenset[str] = frozenset()
    tenant_attname: str = "tenant_id"
    story_attname: str | None = None
    repr_attname: str | None = "name"
    create_inputs: Callable[[Any], dict] | None = None
    delete_inputs: Callable[[Any], dict] | None = None

    @cached_property
    def fields(self) -> list[models.Field]:
        """The concrete fields whose changes are recorded."""
        return [
            f
            for f in self.model._meta.concrete_fields
            if not f.primary_key and f.name not in self.exclude_fields
        ]

    @cached_property
    def _attnames(self) -> tuple[str, ...]:
        return tuple(f.attname for f in self.fields)

    def snapshot(self, instance: models.Model) -> dict[str, Any]:
        """The audited field values of ``instance`` as loaded (deferred fields left out).

        Taken on every load of an audited row, so it stays cheap: a deferred field is one
        missing from the instance's ``__dict__``, and only a mutable value (a JSON dict, say)
        is copied, since code may change it in place before saving.
        """
        loaded = instance.__dict__
        values = {}
        for name in self._attnames:
            if name in loaded:
                value = getattr(instance, name)
                values[name] = value if type(value) in _IMMUTABLE else copy.deepcopy(value)
        return values

    def value(self, name: str, value: Any) -> Any:
        """A field value as it may appear in an entry."""
        return REDACTED if is_secret_key(name, self.secret_fields) else to_json(value)

    def diff(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
        """``{field: [before, after]}`` for the fields whose value changed."""
        changes = {}
        for f in self.fields:
            if f.attname in before and f.attname in after and before[f.attname] != after[f.attname]:
                changes[f.name] = [
                    self.value(f.name, before[f.attname]),
                    self.value(f.name, after[f.attname]),
                ]
        return changes

    def operations_for(self, changes: dict[str, list], after: dict[str, Any]) -> dict[str, dict]:
        """Split one row's changes by operation: ``{operation_name: {field: [before, after]}}``."""
        split: dict[str, dict] = {}
        for name, pair in changes.items():
            op = self.field_operations.get(name, self.update)
            if callable(op):
                op = op(after.get(self.model._meta.get_field(name).attname))
            split.setdefault(op, {})[name] = pair
        for op in self.exclusive_operations & split.keys():
            return {op: changes}
        return split

    def inputs(self, values: dict[str, Any]) -> dict:
        """Tines-style ``{"inputs": {...}}`` for the given field values, secrets redacted."""
        named = {self.model._meta.get_field(k).name: v for k, v in values.items()}
        return {"inputs": {k: self.value(k, v) for k, v in named.items()}}

    def target(self, values: Any) -> dict[str, Any]:
        """The entry columns naming the row an entry is about (an instance or a values dict)."""
        return {
            "tenant_id": self.tenant_id(values),
            "target_type": self.target_type,
            "target_id": _get(values, "pk"),
            "target_repr": self.repr_of(values),
            "story_id": self.story_id(values),
        }

    def tenant_id(self, values: Any) -> int:
        """The tenant of a row (an instance or a ``values()`` dict)."""
        return _get(values, self.tenant_attname)

    def story_id(self, values: Any) -> int | None:
        """The story a row belongs to, if any."""
        return _get(values, self.story_attname) if self.story_attname else None

    def repr_of(self, values: Any) -> str:
        """A short human label of a row; never a secret."""
        if isinstance(values, models.Model):
            return str(values)[:255]
        label = _get(values, self.repr_attname) if self.repr_attname else None
        return str(label if label is not None else _get(values, "pk"))[:255]


def _get(values: Any, attname: str) -> Any:
    return values[attname] if isinstance(values, dict) else getattr(values, attname)


_registry: dict[type[models.Model], AuditedModel] = {}


def add(config: AuditedModel) -> AuditedModel:
    """Put a model's configuration in the list; every operation it names must be in the catalog.

    Adding alone captures nothing: ``auditlog.signals.audit`` adds and connects.
    """
    names = [n for n in (config.create, config.update, config.delete) if n]
    names += [op for op in config.field_operations.values() if isinstance(op, str)]
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise ValueError(f"operations not in the catalog: {unknown}")
    _registry[config.model] = config
    return config


def get(model: type[models.Model]) -> AuditedModel | None:
    """The audit configuration of ``model`` (or of its concrete parent), if it is audited."""
    return _registry.get(model._meta.concrete_model)


def audited_models() -> list[AuditedModel]:
    """Every registered model."""
    return list(_registry.values())
