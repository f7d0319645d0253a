"""Every write to the audited domain goes through one of these services.

The audit entry of each write is recorded by the audit log's capture (signals and audited
querysets) in the same transaction; the actor is taken from the audit context.
"""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from auditlog.services import record

from .models import (
    EMAIL_TAKEN,
    TENANT_PERMISSIONS,
    ApiKey,
    Credential,
    Membership,
    Page,
    Resource,
    Story,
    StoryVersion,
    Team,
    Tenant,
    User,
)

API_KEY_USE_RECORD_INTERVAL = timedelta(hours=1)


def _apply(instance: Any, fields: dict[str, Any], allowed: set[str]) -> Any:
    """Set the allowed fields, validate, save; unknown fields are a validation error."""
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean(validate_unique=True)
    instance.save()
    return instance


def _check_tenant(tenant_id: int, *objects: Any) -> None:
    """Objects of another tenant are never linked together."""
    for obj in objects:
        if obj is not None and obj.tenant_id != tenant_id:
            raise ValidationError(f"{obj._meta.verbose_name} belongs to another tenant.")


# --- Tenants ----------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str) -> Tenant:
    """Create a tenant."""
    tenant = Tenant(name=name)
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, **fields: Any) -> Tenant:
    """Change tenant settings (``TenantConfigChange``)."""
    return _apply(tenant, fields, {"name", "session_timeout_minutes"})


# --- Users ------------------------------------------------------------------------------


def _validate_permissions(permissions: Any) -> list[str]:
    if not isinstance(permissions, list | tuple) or not all(
        p in TENANT_PERMISSIONS for p in permissions
    ):
        raise ValidationError({"permissions": f"Choose from: {', '.join(TENANT_PERMISSIONS)}."})
    return sorted(set(permissions))


def _keep_an_owner(user: User) -> None:
    others = User.objects.filter(tenant_id=user.tenant_id, role=User.Role.OWNER, is_active=True)
    if not others.exclude(pk=user.pk).exists():
        raise ValidationError("A tenant must keep at least one active owner.")


def email_taken_in_tenant(*, tenant_id: int | None, email: str, user: User | None = None) -> bool:
    """Whether another account of this tenant has the address.

    Only this tenant's accounts are looked at: an address may have an account in every
    tenant, so an invitation's answer never depends on (or tells of) another tenant's users.
    """
    taken = User.objects.alias(email_lower=Lower("email")).filter(
        tenant_id=tenant_id, email_lower=email.lower()
    )
    if user is not None:
        taken = taken.exclude(pk=user.pk)
    return taken.exists()


@transaction.atomic
def user_invite(
    *,
    tenant: Tenant,
    email: str,
    name: str = "",
    role: str = User.Role.MEMBER,
    permissions: list[str] | tuple = (),
    password: str | None = None,
) -> User:
    """Invite a user to the tenant (``UsersInvitation``)."""
    user = User(
        tenant=tenant,
        email=User.objects.normalize_email(email).lower(),
        name=name,
        role=role,
        permissions=_validate_permissions(list(permissions)),
    )
    if email_taken_in_tenant(tenant_id=tenant.pk, email=user.email):
        raise ValidationError({"email": EMAIL_TAKEN})
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def user_update(*, user: User, **fields: Any) -> User:
    """Edit a user; role and permission changes are their own operations."""
    if "permissions" in fields:
        fields["permissions"] = _validate_permissions(fields["permissions"])
    if "email" in fields:
        fields["email"] = User.objects.normalize_email(fields["email"]).lower()
        if email_taken_in_tenant(tenant_id=user.tenant_id, email=fields["email"], user=user):
            raise ValidationError({"email": EMAIL_TAKEN})
    demoted = fields.get("role", user.role) != User.Role.OWNER or not fields.get("is_active", True)
    if user.role == User.Role.OWNER and demoted:
        _keep_an_owner(user)
    return _apply(user, fields, {"name", "email", "role", "permissions", "is_active"})


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    """Set a user's password (``UserPasswordChange``; the hash is never recorded)."""
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def user_remove(*, user: User) -> User:
    """Remove a user from the tenant (``UserDeletion``).

    The row stays, deactivated: entries keep pointing at the person who acted, and the
    append-only entries table would refuse the SET NULL of a hard delete.
    """
    if user.role == User.Role.OWNER:
        _keep_an_owner(user)
    for key in user.api_keys.all():
        api_key_revoke(api_key=key)
    for membership in user.memberships.all():
        membership_remove(membership=membership)
    user.is_active = False
    user.removed_at = timezone.now()
    user.set_unusable_password()
    user.save()
    return user


# --- Teams ------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, tenant: Tenant, name: str, description: str = "") -> Team:
    """Create a team (``TeamCreation``)."""
    team = Team(tenant=tenant, name=name, description=description)
    team.full_clean()
    team.save()
    return team


@transaction.atomic
def team_update(*, team: Team, **fields: Any) -> Team:
    """Edit a team (``TeamUpdate``)."""
    return _apply(team, fields, {"name", "description"})


@transaction.atomic
def team_delete(*, team: Team) -> None:
    """Delete a team and everything it owns (each deletion is recorded)."""
    team.delete()


@transaction.atomic
def membership_add(*, team: Team, user: User, role: str = Membership.Role.VIEWER) -> Membership:
    """Add a user to a team (``TeamMembersAddition``)."""
    _check_tenant(team.tenant_id, user)
    if not user.is_active:
        raise ValidationError({"user": "This user has been removed."})
    membership = Membership(tenant_id=team.tenant_id, team=team, user=user, role=role)
    membership.full_clean()
    membership.save()
    return membership


@transaction.atomic
def membership_update(*, membership: Membership, role: str) -> Membership:
    """Change a member's team role (``TeamMemberRoleChange``)."""
    return _apply(membership, {"role": role}, {"role"})


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a user from a team (``TeamMemberRemoval``)."""
    membership.delete()


# --- Credentials and resources -----------------------------------------------------------


@transaction.atomic
def credential_create(
    *,
    team: Team,
    name: str,
    value: str,
    credential_type: str = Credential.Type.TEXT,
    description: str = "",
    shared_with_teams: list[Team] | tuple = (),
) -> Credential:
    """Create a credential; its value is encrypted and never shown again (``CredentialSave``)."""
    _check_tenant(team.tenant_id, *shared_with_teams)
    credential = Credential(
        tenant_id=team.tenant_id,
        team=team,
        name=name,
        value=value,
        credential_type=credential_type,
        description=description,
    )
    credential.full_clean()
    credential.save()
    if shared_with_teams:
        credential.shared_with_teams.set(shared_with_teams)
    return credential


@transaction.atomic
def credential_update(*, credential: Credential, **fields: Any) -> Credential:
    """Edit a credential, including replacing its value (``CredentialSave``)."""
    shared = fields.pop("shared_with_teams", None)
    if "team" in fields:
        _check_tenant(credential.tenant_id, fields["team"])
    if fields:
        _apply(credential, fields, {"name", "value", "credential_type", "description", "team"})
    if shared is not None:
        _check_tenant(credential.tenant_id, *shared)
        credential.shared_with_teams.set(shared)
    return credential


@transaction.atomic
def credential_delete(*, credential: Credential) -> None:
    """Delete a credential (``CredentialDestruction``)."""
    credential.delete()


@transaction.atomic
def resource_create(*, team: Team, name: str, value: str = "", description: str = "") -> Resource:
    """Create a resource (``GlobalResourceCreation``)."""
    resource = Resource(
        tenant_id=team.tenant_id, team=team, name=name, value=value, description=description
    )
    resource.full_clean()
    resource.save()
    return resource


@transaction.atomic
def resource_update(*, resource: Resource, **fields: Any) -> Resource:
    """Edit a resource (``GlobalResourceEdit``)."""
    if "team" in fields:
        _check_tenant(resource.tenant_id, fields["team"])
    return _apply(resource, fields, {"name", "value", "description", "team"})


@transaction.atomic
def resource_delete(*, resource: Resource) -> None:
    """Delete a resource (``GlobalResourceDestruction``)."""
    resource.delete()


# --- Stories, versions and pages ----------------------------------------------------------


@transaction.atomic
def story_create(
    *, team: Team, name: str, description: str = "", enabled: bool = True, locked: bool = False
) -> Story:
    """Create a story (``StoryCreation``), enabled and unlocked unless told otherwise."""
    story = Story(
        tenant_id=team.tenant_id,
        team=team,
        name=name,
        description=description,
        enabled=enabled,
        locked=locked,
    )
    story.full_clean()
    story.save()
    return story


@transaction.atomic
def story_update(*, story: Story, **fields: Any) -> Story:
    """Rename, describe, enable/disable, lock/unlock or move a story (one entry per kind)."""
    if "team" in fields:
        _check_tenant(story.tenant_id, fields["team"])
    return _apply(story, fields, {"name", "description", "enabled", "locked", "team"})


@transaction.atomic
def story_archive(*, story: Story) -> Story:
    """Archive a story (``StoryArchive``)."""
    return _apply(story, {"archived": True}, {"archived"})


@transaction.atomic
def story_restore(*, story: Story) -> Story:
    """Restore an archived story (``StoryRestore``)."""
    return _apply(story, {"archived": False}, {"archived"})


@transaction.atomic
def story_delete(*, story: Story) -> None:
    """Permanently delete an archived story (``ArchivedStoryDeletion``)."""
    if not story.archived:
        raise ValidationError("Archive the story before deleting it.")
    story.delete()


@transaction.atomic
def story_version_create(*, story: Story, name: str) -> StoryVersion:
    """Save a named snapshot of a story (``StoryVersionCreate``)."""
    snapshot = {
        "name": story.name,
        "description": story.description,
        "enabled": story.enabled,
        "locked": story.locked,
    }
    version = StoryVersion(tenant_id=story.tenant_id, story=story, name=name, snapshot=snapshot)
    version.full_clean()
    version.save()
    return version


@transaction.atomic
def story_version_rename(*, version: StoryVersion, name: str) -> StoryVersion:
    """Rename a story version (``StoryVersionNameChange``)."""
    return _apply(version, {"name": name}, {"name"})


@transaction.atomic
def story_version_delete(*, version: StoryVersion) -> None:
    """Delete a story version (``StoryVersionDeletion``)."""
    version.delete()


@transaction.atomic
def page_create(*, story: Story, name: str, description: str = "") -> Page:
    """Create a page for a story (``PageCreation``)."""
    page = Page(tenant_id=story.tenant_id, story=story, name=name, description=description)
    page.full_clean()
    page.save()
    return page


@transaction.atomic
def page_update(*, page: Page, **fields: Any) -> Page:
    """Edit a page; publishing is its own operation (``PageUpdate``)."""
    return _apply(page, fields, {"name", "description", "published"})


@transaction.atomic
def page_publish(*, page: Page) -> Page:
    """Publish a page (``PagePublish``)."""
    return _apply(page, {"published": True}, {"published"})


@transaction.atomic
def page_unpublish(*, page: Page) -> Page:
    """Unpublish a page (``PageUnpublish``)."""
    return _apply(page, {"published": False}, {"published"})


@transaction.atomic
def page_delete(*, page: Page) -> None:
    """Delete a page (``PageDestruction``)."""
    page.delete()


# --- API keys -----------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *, user: User, name: str, kind: str = ApiKey.Kind.PERSONAL
) -> tuple[ApiKey, str]:
    """Create an API key; returns the key once, only its hash is stored."""
    if not user.is_active:
        raise ValidationError({"user": "This user has been removed."})
    raw = ApiKey.generate()
    api_key = ApiKey(
        tenant_id=user.tenant_id,
        user=user,
        name=name,
        kind=kind,
        key_hash=ApiKey.hash_key(raw),
    )
    api_key.full_clean()
    api_key.save()
    return api_key, raw


@transaction.atomic
def api_key_rename(*, api_key: ApiKey, name: str) -> ApiKey:
    """Rename an API key (``AuthenticationTokenEdit``); the key itself never changes."""
    return _apply(api_key, {"name": name}, {"name"})


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> None:
    """Revoke (delete) an API key (``AuthenticationTokenDeletion``)."""
    api_key.delete()


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Note that a key was used; recorded at most once an hour per key.

    Runs on every API request: the common case (used within the hour) touches no database.
    """
    now = timezone.now()
    last = api_key.last_used_at
    if last is not None and now - last < API_KEY_USE_RECORD_INTERVAL:
        return
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        record(
            operation_name="AuthenticationTokenUse",
            tenant_id=api_key.tenant_id,
            target_id=api_key.pk,
            target_repr=str(api_key),
            inputs={"inputs": {"authenticationTokenId": api_key.pk}},
        )
