"""Bulk paths of audited models: one entry per affected row, inserted in batches.

``update()`` on PostgreSQL writes its entries in the same SQL statement when it can do so
exactly (``sql_update``); otherwise, and on other databases, it diffs row by row in Python.
"""

from collections.abc import Iterator
from typing import Any

from django.db import models, transaction

from . import registry, sql_update
from .services import entry_batch, entry_row, record_rows, stamp

CHUNK = 5000


class AuditedQuerySet(models.QuerySet):
    """``update``, ``delete``, ``bulk_create`` and ``bulk_update`` that record every row."""

    def update(self, **kwargs: Any) -> int:
        self._for_write = True
        with transaction.atomic(using=self.db):
            statement = sql_update.update_statement(self, kwargs)
            if statement is not None:
                try:
                    with transaction.atomic(using=self.db):  # a refused statement leaves nothing
                        count = statement.run()
                except sql_update.RowsChanged:
                    statement = None  # another writer got there first: lock, then diff
            if statement is None:
                count = self._update_row_by_row(kwargs)
        self._result_cache = None
        return count

    update.alters_data = True

    def _update_row_by_row(self, kwargs: dict[str, Any]) -> int:
        """Update, then diff each row and record its entries in Python (any database)."""
        config = registry.get(self.model)
        fields = [self.model._meta.get_field(name) for name in kwargs]
        columns = [f.attname for f in fields]
        columns = list(dict.fromkeys(["pk", config.tenant_attname, *columns, *_optional(config)]))
        with transaction.atomic(using=self.db):
            # Lock the rows, so that nobody else changes them between here and the UPDATE.
            before = {row["pk"]: row for row in self.select_for_update().values(*columns)}
            count = super().update(**kwargs)
            if count != len(before):
                # A row that matches was committed after the SELECT: its before is unknown.
                raise ConcurrentUpdateError(
                    f"{self.model._meta.label}: {count} rows updated, {len(before)} expected"
                )
            if any(hasattr(value, "resolve_expression") for value in kwargs.values()):
                afters = [
                    row
                    for pks in _chunks(list(before))
                    for row in self.model._base_manager.using(self.db)
                    .filter(pk__in=pks)
                    .values(*columns)
                ]
            else:
                pairs = zip(fields, kwargs.values(), strict=True)
                new = {f.attname: _python_value(f, v) for f, v in pairs}
                afters = [{**row, **new} for row in before.values()]
            shared = stamp()
            record_rows(
                [
                    entry
                    for after in afters
                    for entry in _update_entries(config, before[after["pk"]], after, shared)
                ]
            )
        return count

    def delete(self) -> tuple[int, dict[str, int]]:
        # Deletion sends pre/post_delete for every row (cascades included); batch their entries.
        with entry_batch():
            return super().delete()

    delete.alters_data = True

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list:
        config = registry.get(self.model)
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            entries = []
            shared = stamp()
            for obj in created:
                if obj.pk is None:
                    raise RuntimeError("bulk_create did not return primary keys to audit")
                values = config.snapshot(obj)
                obj._audit_snapshot = values
                if config.create is None:
                    continue
                entries.append(
                    entry_row(
                        operation_name=config.create,
                        **config.target(obj),
                        inputs=config.create_inputs(obj)
                        if config.create_inputs
                        else config.inputs(values),
                        secret_fields=config.secret_fields,
                        shared=shared,
                    )
                )
            record_rows(entries)
        return created

    bulk_create.alters_data = True

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        # Django implements bulk_update with self.filter(...).update(...): update() records.
        objs = list(objs)
        config = registry.get(self.model)
        with entry_batch():
            count = super().bulk_update(objs, fields, batch_size=batch_size)
        for obj in objs:
            obj._audit_snapshot = config.snapshot(obj)
        return count

    bulk_update.alters_data = True


class ConcurrentUpdateError(Exception):
    """The set of rows an audited update matched changed while it ran; nothing was changed."""


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _python_value(field: models.Field, value: Any) -> Any:
    """The value a plain ``update()`` argument has once stored, as loaded rows show it."""
    if isinstance(value, models.Model):
        value = value.pk
    return field.to_python(value)


def _optional(config: "registry.AuditedModel") -> list[str]:
    return [a for a in (config.story_attname, config.repr_attname) if a]


def _update_entries(
    config: "registry.AuditedModel", before: dict, after: dict, shared: dict
) -> list[dict]:
    changes = config.diff(before, after)
    return [
        entry_row(
            operation_name=operation_name,
            **config.target(after),
            inputs={"inputs": {"id": after["pk"], **{k: v[1] for k, v in subset.items()}}},
            changes=subset,
            shared=shared,
            redacted=True,
        )
        for operation_name, subset in config.operations_for(changes, after).items()
    ]


class AuditedModel(models.Model):
    """Base of audited models: saves and deletes run in a transaction with their entries."""

    objects = AuditedQuerySet.as_manager()

    class Meta:
        abstract = True
        base_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # post_save fires after Django's own save block; without an outer transaction a
        # failing entry could not take the change back with it. No savepoint: inside the
        # caller's transaction an error marks all of it for rollback (as Django does when the
        # UPDATE itself fails), so the change still never commits without its entry, and a
        # single save costs no SAVEPOINT / RELEASE round trips.
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        with entry_batch():
            return super().delete(*args, **kwargs)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        config = registry.get(type(self))
        if config is not None:
            self._audit_snapshot = {**getattr(self, "_audit_snapshot", {}), **config.snapshot(self)}
