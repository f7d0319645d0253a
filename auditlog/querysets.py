"""Bulk paths of audited models: one entry per affected row, inserted in batches."""

from typing import Any

from django.db import models, transaction

from . import registry
from .services import build_entry, entry_batch, record_many

CHUNK = 5000


class AuditedQuerySet(models.QuerySet):
    """``update``, ``delete``, ``bulk_create`` and ``bulk_update`` that record every row."""

    def update(self, **kwargs: Any) -> int:
        config = registry.get(self.model)
        names = [self.model._meta.get_field(k).attname for k in kwargs]
        columns = list(dict.fromkeys(["pk", config.tenant_attname, *names, *_optional(config)]))
        with transaction.atomic(using=self.db):
            # Lock the rows so the before/after pair is exactly what this statement did.
            before = list(self.select_for_update().values(*columns))
            count = 0
            entries = []
            for start in range(0, len(before), CHUNK):
                chunk = {row["pk"]: row for row in before[start : start + CHUNK]}
                rows = models.QuerySet(self.model, using=self.db).filter(pk__in=chunk)
                count += models.QuerySet.update(rows, **kwargs)
                for after in rows.values(*columns):
                    entries += _update_entries(config, chunk[after["pk"]], after)
            record_many(entries)
        return count

    update.alters_data = True

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
            for obj in created:
                if obj.pk is None:
                    raise RuntimeError("bulk_create did not return primary keys to audit")
                values = config.snapshot(obj)
                obj._audit_snapshot = values
                entries.append(
                    build_entry(
                        operation_name=config.create,
                        tenant_id=config.tenant_id(obj),
                        target_type=config.target_type,
                        target_id=obj.pk,
                        target_repr=config.repr_of(obj),
                        story_id=config.story_id(obj),
                        inputs=config.create_inputs(obj)
                        if config.create_inputs
                        else config.inputs(values),
                        secret_fields=config.secret_fields,
                    )
                )
            record_many(entries)
        return created

    bulk_create.alters_data = True

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        config = registry.get(self.model)
        objs = list(objs)
        names = [self.model._meta.get_field(f).attname for f in fields]
        columns = list(dict.fromkeys(["pk", config.tenant_attname, *names, *_optional(config)]))
        with transaction.atomic(using=self.db):
            pks = [obj.pk for obj in objs]
            before = {
                row["pk"]: row
                for start in range(0, len(pks), CHUNK)
                for row in self.model._base_manager.using(self.db)
                .filter(pk__in=pks[start : start + CHUNK])
                .select_for_update()
                .values(*columns)
            }
            count = super().bulk_update(objs, fields, batch_size=batch_size)
            entries = []
            for obj in objs:
                after = {c: getattr(obj, c) for c in columns}
                entries += _update_entries(config, before[obj.pk], after)
                obj._audit_snapshot = config.snapshot(obj)
            record_many(entries)
        return count

    bulk_update.alters_data = True


def _optional(config: "registry.AuditedModel") -> list[str]:
    return [a for a in (config.story_attname, config.repr_attname) if a]


def _update_entries(config: "registry.AuditedModel", before: dict, after: dict) -> list:
    changes = config.diff(before, after)
    return [
        build_entry(
            operation_name=operation_name,
            tenant_id=config.tenant_id(after),
            target_type=config.target_type,
            target_id=after["pk"],
            target_repr=config.repr_of(after),
            story_id=config.story_id(after),
            inputs={"inputs": {"id": after["pk"], **{k: v[1] for k, v in subset.items()}}},
            changes=subset,
            secret_fields=config.secret_fields,
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
        # failing entry could not take the change back with it.
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        with entry_batch():
            return super().delete(*args, **kwargs)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        config = registry.get(type(self))
        if config is not None:
            self._audit_snapshot = {**getattr(self, "_audit_snapshot", {}), **config.snapshot(self)}
