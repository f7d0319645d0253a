"""Thin receivers: build the diff, call ``record``. ``audit`` connects them per audited model."""

from typing import Any

from celery import signals as celery_signals
from django.contrib.auth import signals as auth_signals
from django.db import models
from django.db.models import signals

from . import registry
from .context import ACTOR_TASK, AuditContext, _current
from .services import record, record_for_email


def audit(model: type[models.Model], **options: Any) -> registry.AuditedModel:
    """Audit ``model``: every create, update, delete and m2m change becomes an entry.

    The options are ``registry.AuditedModel``'s fields; the model joins the registry (which
    checks its operations against the catalog) and its receivers are connected.
    """
    config = registry.add(registry.AuditedModel(model=model, **options))
    connect_model(config)
    return config


def connect_model(config: registry.AuditedModel) -> None:
    """Connect the capture receivers for one registered model."""
    model = config.model
    uid = f"auditlog.{model._meta.label}"
    signals.post_init.connect(take_snapshot, sender=model, dispatch_uid=f"{uid}.init")
    signals.post_save.connect(record_save, sender=model, dispatch_uid=f"{uid}.save")
    signals.post_delete.connect(record_delete, sender=model, dispatch_uid=f"{uid}.delete")
    for name in config.m2m_fields:
        through = model._meta.get_field(name).remote_field.through
        signals.m2m_changed.connect(record_m2m, sender=through, dispatch_uid=f"{uid}.{name}")


def take_snapshot(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Remember the values an instance was loaded with, to diff against on save."""
    instance._audit_snapshot = registry.get(sender).snapshot(instance)


def record_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    """Record a create, or one entry per operation that an update amounts to."""
    config = registry.get(sender)
    after = config.snapshot(instance)
    before = getattr(instance, "_audit_snapshot", {})
    instance._audit_snapshot = after
    common = {**config.target(instance), "secret_fields": config.secret_fields}
    if created:
        if config.create is None:
            return
        inputs = config.create_inputs(instance) if config.create_inputs else config.inputs(after)
        record(operation_name=config.create, inputs=inputs, **common)
        return
    changes = config.diff(before, after)
    for operation_name, subset in config.operations_for(changes, after).items():
        inputs = {"inputs": {"id": instance.pk, **{k: v[1] for k, v in subset.items()}}}
        record(operation_name=operation_name, inputs=inputs, changes=subset, **common)


def record_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Record the deletion of a row (also when it goes by cascade)."""
    config = registry.get(sender)
    if config.delete is None:
        return
    inputs = (
        config.delete_inputs(instance) if config.delete_inputs else {"inputs": {"id": instance.pk}}
    )
    record(
        operation_name=config.delete,
        **config.target(instance),
        inputs=inputs,
        secret_fields=config.secret_fields,
    )


def record_m2m(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set | None,
    **kwargs: Any,
) -> None:
    """Record a change of a many-to-many field as an update of each object that owns it."""
    owner_model = model if reverse else type(instance)
    config = registry.get(owner_model)
    name = next(
        n
        for n in config.m2m_fields
        if owner_model._meta.get_field(n).remote_field.through is sender
    )
    if action in ("pre_add", "pre_remove", "pre_clear"):
        if reverse:
            # Changed from the other side (team.shared_credentials.remove(...)).
            owners = owner_model._base_manager.filter(
                **({"pk__in": pk_set} if pk_set is not None else {name: instance})
            )
        else:
            owners = [instance]
        instance._audit_m2m_before = {
            owner: sorted(getattr(owner, name).values_list("pk", flat=True)) for owner in owners
        }
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    for owner, before in instance.__dict__.pop("_audit_m2m_before", {}).items():
        after = sorted(getattr(owner, name).values_list("pk", flat=True))
        if before == after:
            continue
        record(
            operation_name=config.update,
            **config.target(owner),
            inputs={"inputs": {"id": owner.pk, name: after}},
            changes={name: [before, after]},
        )


# --- Authentication: operations that are not row changes -------------------------------


def record_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A successful sign-in (Tines records ``Login`` with null inputs)."""
    record(
        operation_name="Login",
        tenant_id=user.tenant_id,
        target_id=user.pk,
        target_repr=user.email,
        user=user,
    )


def record_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A sign-out."""
    if user is None:
        return
    record(
        operation_name="Logout",
        tenant_id=user.tenant_id,
        target_id=user.pk,
        target_repr=user.email,
        user=user,
    )


def record_login_failure(sender: Any, credentials: dict, request: Any = None, **kw: Any) -> None:
    """A failed sign-in, filed under the tenant of the account it tried, with that email."""
    email = str(credentials.get("username") or credentials.get("email") or "")[:254]
    record_for_email(
        operation_name="LoginFailure", email=email, inputs={"inputs": {"email": email}}
    )


auth_signals.user_logged_in.connect(record_login, dispatch_uid="auditlog.login")
auth_signals.user_logged_out.connect(record_logout, dispatch_uid="auditlog.logout")
auth_signals.user_login_failed.connect(record_login_failure, dispatch_uid="auditlog.login_failed")


# --- Celery: work done by tasks is attributed to "task" ----------------------------------

_task_tokens: dict[str, Any] = {}


@celery_signals.task_prerun.connect
def enter_task_context(task_id: str, task: Any, **kwargs: Any) -> None:
    """Entries written by a task say so."""
    _task_tokens[task_id] = _current.set(
        AuditContext(actor_type=ACTOR_TASK, request_id=f"task-{task_id}"[:64])
    )


@celery_signals.task_postrun.connect
def leave_task_context(task_id: str, **kwargs: Any) -> None:
    """Restore the worker's context after a task."""
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _current.reset(token)
