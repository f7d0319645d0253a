"""``QuerySet.update()`` and its entries in one SQL statement (PostgreSQL).

Why a second path
-----------------
Writing 10,000 entries costs the database one and a half to three times what updating the
10,000 rows does (nine indexes and two foreign-key checks per entry), so an audited update
stays within a few times a plain one only if little else is spent per row. Shipping every
row's before-values to Python, diffing, redacting and JSON-encoding them there and streaming
the entries back by COPY cost about as much again. This path does it all in the database,
in one statement::

    WITH updated AS (the queryset's own UPDATE ... FROM the table AS old
                     WHERE old.ctid = the row's ctid AND the queryset's filter
                     RETURNING the new row, the old values, which columns changed),
         entries AS (INSERT INTO the entries SELECT ... FROM updated, one row per
                     operation whose columns changed)
    SELECT (SELECT count(*) FROM updated), (SELECT count(*) of the rows the filter matches)

Each row is paired with itself (``old``, read in the statement's snapshot) by ``ctid``, so
the rows are found as a plain update finds them and no join depends on the planner's guess
of how many rows match (a nested loop over a guessed set took seconds for 10,000 new rows).

Its entries are the row-by-row path's entries
---------------------------------------------
- **Before-values are the values the UPDATE overwrote, or the statement does not stand.**
  ``old`` is the version of the row in the statement's snapshot. If another transaction
  changed the row since, the UPDATE meets the newer version, whose ``ctid`` differs, and
  skips it; then fewer rows are updated than the filter matched, ``Statement.run`` raises
  ``RowsChanged``, the caller's savepoint takes the whole statement back (rows and entries)
  and ``update()`` goes the row-by-row way, which locks the rows and waits for that writer.
- **The same values, encoded the same way.** The statement is used only when SQL encodes
  every value exactly as ``entry_row`` does in Python: plain values (no expressions) for
  text, integer, boolean and foreign-key columns of the model's own table, of Django's own
  field classes (an encrypted field is no plain text column) without a collation. A secret
  field is ``"REDACTED"`` on both sides; a string longer than the cap becomes the same
  marker (``auditlog.truncation``), its length, SHA-256 and prefix computed by the database.
  Operations are chosen once, in Python, from the new values, as ``operations_for`` does; an
  update that involves an exclusive operation takes the row-by-row path.
  ``tests/auditlog/test_sql_update.py`` makes the same updates both ways and compares every
  column of every entry.
- **Same transaction, fail closed.** It is one statement: the rows change only if every one
  of their entries is written.

Anything else (SQLite, expressions, other field types, ``values()`` or sliced querysets)
takes the row-by-row path in ``querysets.py``.
"""

# The SQL is assembled from quoted identifiers of model metadata; every value is a parameter.
# ruff: noqa: S608

from typing import Any

from django.db import connections, models
from django.db.models.sql import UpdateQuery

from . import registry, routing
from .models import AuditLogEntry
from .operations import get_operation
from .redaction import REDACTED, is_secret_key
from .services import entry_fields, stamp
from .truncation import MAX_STRING_LENGTH, PREFIX_LENGTH

TEXT_FIELDS = (models.CharField, models.TextField, models.EmailField, models.SlugField)
NUMBER_FIELDS = (
    models.BooleanField,
    models.SmallIntegerField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
)
# Keys whose JSON is a plain number (``{"id": 7}``) and whose text is ``str(pk)``.
INTEGER_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)
EMPTY = "'{}'::jsonb"

Fragment = tuple[str, list[Any]]


class Change:
    """One updated, audited column: its operation and how an entry shows its values."""

    def __init__(self, n: int, field: models.Field, operation: str, secret: bool) -> None:
        self.n = n
        self.field = field
        self.operation = operation
        self.secret = secret
        self.changed = f"u.c{n}"

    def returning(self, old: str, new: str) -> list[str]:
        """What the UPDATE returns for this column: whether it changed, and both values.

        The values come as entry JSON, computed once per row however often the entry shows them.
        """
        columns = [f"{old} IS DISTINCT FROM {new} AS c{self.n}"]
        if not self.secret:
            columns += [f"{self._json(old)} AS b{self.n}", f"{self._json(new)} AS a{self.n}"]
        return columns

    def _json(self, column: str) -> str:
        """A value as ``entry_row`` stores it: a long string truncated, anything else as is."""
        if type(self.field) in TEXT_FIELDS:
            return (
                f"CASE WHEN char_length({column}) > {MAX_STRING_LENGTH} THEN jsonb_build_object("
                f"'truncated', true, 'length', char_length({column}), "
                f"'sha256', encode(sha256(convert_to({column}, 'UTF8')), 'hex'), "
                f"'prefix', left({column}, {PREFIX_LENGTH})) ELSE to_jsonb({column}) END"
            )
        return f"to_jsonb({column})"

    def value(self, side: str) -> Fragment:
        """The old (``b``) or new (``a``) value's JSON; a secret's is always ``"REDACTED"``."""
        if self.secret:
            return "to_jsonb(%s::text)", [REDACTED]
        return f"u.{side}{self.n}", []

    def input(self) -> Fragment:
        """``{name: new}`` if this column changed in the row, else ``{}``."""
        new, params = self.value("a")
        return (
            f"CASE WHEN {self.changed} THEN jsonb_build_object(%s::text, {new}) ELSE {EMPTY} END",
            [self.field.name, *params],
        )

    def change(self) -> Fragment:
        """``{name: [old, new]}`` if this column changed in the row, else ``{}``."""
        old, old_params = self.value("b")
        new, new_params = self.value("a")
        return (
            f"CASE WHEN {self.changed} THEN jsonb_build_object(%s::text, "
            f"jsonb_build_array({old}, {new})) ELSE {EMPTY} END",
            [self.field.name, *old_params, *new_params],
        )


class RowsChanged(Exception):
    """Another transaction changed a row the update matched; the statement must not stand."""


def update_statement(queryset: models.QuerySet, kwargs: dict[str, Any]) -> "Statement | None":
    """The one statement for ``queryset.update(**kwargs)``, or None if it would not be exact."""
    model, query = queryset.model, queryset.query
    config = registry.get(model)
    if (
        connections[queryset.db].vendor != "postgresql"
        or config is None
        or not kwargs
        or query.is_sliced
        or query.distinct
        or query.combinator
        or query.annotations
        or query.extra
        or query.group_by is not None
        or query.values_select
        or model._meta.parents
        or type(model._meta.pk) not in INTEGER_KEYS
    ):
        return None
    values: dict[models.Field, Any] = {}
    for name, value in kwargs.items():
        try:
            field = model._meta.get_field(name)
        except models.FieldDoesNotExist:
            return None
        if field in values or not _plain(field, model) or hasattr(value, "resolve_expression"):
            return None
        if isinstance(value, models.Model):
            if not field.is_relation:
                return None  # Django's own update refuses it; let it say so
            value = value.prepare_database_save(field)
        values[field] = value
    for attname in (config.tenant_attname, config.story_attname, config.repr_attname):
        field = _field(model, attname) if attname else model._meta.pk
        if field is None or not (field.primary_key or _plain(field, model)):
            return None
    changes = []
    for field, value in values.items():
        if field not in config.fields:
            continue
        operation = config.field_operations.get(field.name, config.update)
        if callable(operation):
            operation = operation(field.to_python(value))
        secret = is_secret_key(field.name, config.secret_fields)
        changes.append(Change(len(changes), field, operation, secret))
    if config.exclusive_operations & {c.operation for c in changes}:
        return None
    return Statement(queryset, config, kwargs, changes)


def _plain(field: models.Field, model: type[models.Model]) -> bool:
    """A column of the model's own table, whose values SQL encodes as ``to_json`` does."""
    if not field.concrete or field.model is not model or getattr(field, "db_collation", None):
        return False
    if field.is_relation:
        target = field.target_field
        return field.many_to_one and target.primary_key and type(target) in INTEGER_KEYS
    return type(field) in (*TEXT_FIELDS, *NUMBER_FIELDS)


def _field(model: type[models.Model], attname: str) -> models.Field | None:
    return next((f for f in model._meta.concrete_fields if f.attname == attname), None)


class Statement:
    """The ``WITH updated, entries`` statement of one update (see the module docstring)."""

    def __init__(
        self,
        queryset: models.QuerySet,
        config: registry.AuditedModel,
        kwargs: dict[str, Any],
        changes: list[Change],
    ) -> None:
        self.queryset = queryset
        self.config = config
        self.kwargs = kwargs
        self.changes = changes
        self.connection = connections[queryset.db]
        self.qn = self.connection.ops.quote_name

    def run(self) -> int:
        """Update the rows and write their entries; return the number of rows matched.

        Raises ``RowsChanged`` if another transaction changed a matched row meanwhile: the
        caller rolls the statement back (a savepoint) and takes the row-by-row path.
        """
        shared = stamp()
        routing.pin_writers([shared["user_id"]])
        sql, params = self.sql(shared)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated, matched = cursor.fetchone()
        if updated != matched:
            raise RowsChanged(f"{matched} rows matched, {updated} updated")
        return updated

    def sql(self, shared: dict[str, Any]) -> Fragment:
        """The statement and its parameters; ``shared`` is the entries' ``stamp()``."""
        update, matched, params, where_params = self._update()
        sql = f"WITH updated AS ({update})"
        if self.changes:
            entries, entry_params = self._entries(shared)
            sql += f", entries AS ({entries})"
            params += entry_params
        return f"{sql} SELECT (SELECT count(*) FROM updated), ({matched})", [*params, *where_params]

    def _update(self) -> tuple[str, str, list[Any], list[Any]]:
        """Django's own UPDATE of the queryset, each row paired with its snapshot as ``old``.

        Returns the UPDATE (returning what the entries need), a count of the rows its filter
        matches in the statement's snapshot, and the parameters of each.
        """
        query = self.queryset.query.chain(UpdateQuery)
        query.add_update_values(self.kwargs)
        query.clear_ordering(force=True)
        sql, params = query.get_compiler(self.queryset.db).as_sql()
        head, _, where = sql.partition(" WHERE ")  # the SET clause holds no literal text
        split = head.count("%s")
        set_params, where_params = list(params[:split]), list(params[split:])
        table = self.qn(self.queryset.model._meta.db_table)
        condition = f"old.ctid = {table}.ctid"
        if where:
            # The filter on both sides: each is found through the filter's index, never by
            # reading the whole table (Django's WHERE names the table itself only outside
            # the subqueries of related filters, which use their own aliases).
            condition += f" AND ({where}) AND ({where.replace(f'{table}.', 'old.')})"
            params = [*set_params, *where_params, *where_params]
        matched = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        pk = self._column(self.queryset.model._meta.pk.attname)
        returning = [
            f"{pk} AS pk",
            f"{self._column(self.config.tenant_attname)} AS tenant",
            f"{self._column(self.config.story_attname) or 'NULL::bigint'} AS story",
            # repr_of(): the label as text, else the pk, cut to 255 characters.
            f"left(coalesce({self._column(self.config.repr_attname) or 'NULL'}::text, "
            f"{pk}::text), 255) AS repr",
        ]
        for change in self.changes:
            column = self.qn(change.field.column)
            returning += change.returning(f"old.{column}", f"{table}.{column}")
        update = f"{head} FROM {table} AS old WHERE {condition} RETURNING {', '.join(returning)}"
        return update, matched, list(params), where_params

    def _column(self, attname: str | None) -> str | None:
        """A column of the updated table, qualified (``"tenants_story"."name"``)."""
        if not attname:
            return None
        meta = self.queryset.model._meta
        field = meta.pk if attname == meta.pk.attname else _field(self.queryset.model, attname)
        return f"{self.qn(meta.db_table)}.{self.qn(field.column)}"

    def _entries(self, shared: dict[str, Any]) -> Fragment:
        """INSERT ... SELECT: per updated row, one entry per operation whose columns changed.

        One SELECT per operation (``UNION ALL`` when there are several), each keeping the rows
        in which one of its columns changed.
        """
        by_operation: dict[str, list[Change]] = {}
        for change in self.changes:
            by_operation.setdefault(change.operation, []).append(change)
        fields = entry_fields()
        selects, params = [], []
        for name, changes in by_operation.items():
            operation = get_operation(name)
            inputs, diff = _json_of(changes)
            parts = {
                "tenant_id": ("u.tenant", []),
                "operation_name": ("%s::text", [operation.name]),
                "target_type": ("%s::text", [self.config.target_type or operation.target_type]),
                "target_id": ("u.pk::text", []),
                "target_repr": ("u.repr", []),
                "story_id": ("u.story", []),
                "inputs": inputs,
                "outputs": (EMPTY, []),
                "changes": diff,
            }
            select = []
            for field in fields:
                if field.attname in parts:
                    sql, part_params = parts[field.attname]
                else:  # the stamp every entry shares, typed for UNION ALL
                    value = field.get_db_prep_save(shared[field.attname], self.connection)
                    sql, part_params = f"%s::{field.db_type(self.connection)}", [value]
                select.append(sql)
                params += part_params
            changed = " OR ".join(c.changed for c in changes)
            selects.append(f"SELECT {', '.join(select)} FROM updated AS u WHERE {changed}")
        sql = (
            f"INSERT INTO {self.qn(AuditLogEntry._meta.db_table)} "
            f"({', '.join(self.qn(f.column) for f in fields)}) {' UNION ALL '.join(selects)}"
        )
        return sql, params


def _json_of(changes: list[Change]) -> tuple[Fragment, Fragment]:
    """An operation's ``inputs`` and ``changes`` JSON, for rows where one of its columns changed.

    A column that is its operation's only one changed in every such row: no CASE for it.
    """
    if len(changes) == 1:
        (change,) = changes
        new, new_params = change.value("a")
        old, old_params = change.value("b")
        name = change.field.name
        return (
            (
                f"jsonb_build_object('inputs', jsonb_build_object('id', u.pk, %s::text, {new}))",
                [name, *new_params],
            ),
            (
                f"jsonb_build_object(%s::text, jsonb_build_array({old}, {new}))",
                [name, *old_params, *new_params],
            ),
        )
    inputs = [c.input() for c in changes]
    diffs = [c.change() for c in changes]
    return (
        (
            "jsonb_build_object('inputs', jsonb_build_object('id', u.pk) || "
            f"{' || '.join(sql for sql, _ in inputs)})",
            [p for _, part in inputs for p in part],
        ),
        (" || ".join(sql for sql, _ in diffs), [p for _, part in diffs for p in part]),
    )
