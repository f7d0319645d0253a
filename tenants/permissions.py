"""Who may do what to the domain through the API.

Owners may do everything in their tenant. Team-scoped objects (credentials, resources,
stories and their versions, pages) are readable by the members of their team and
writable by its admins and editors. Objects of another tenant never reach these checks:
every queryset is scoped to the caller's tenant first, so they are a 404.
"""

from typing import Any

from django.db.models import Q
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import ApiKey, Membership, Page, StoryVersion, User

WRITE_ROLES = frozenset({Membership.Role.ADMIN, Membership.Role.EDITOR})


def team_roles(user: User) -> dict[int, str]:
    """``{team_id: role}`` of the user's memberships (cached on the user for the request)."""
    roles = getattr(user, "_team_roles", None)
    if roles is None:
        roles = dict(
            Membership.objects.filter(user=user, tenant_id=user.tenant_id).values_list(
                "team_id", "role"
            )
        )
        user._team_roles = roles
    return roles


def can_read_team(user: User, team_id: int) -> bool:
    """Owners, and members of the team in any role."""
    return user.is_owner or team_id in team_roles(user)


def can_write_team(user: User, team_id: int) -> bool:
    """Owners, and the team's admins and editors."""
    return user.is_owner or team_roles(user).get(team_id) in WRITE_ROLES


def readable_team_filter(user: User, prefix: str = "") -> Q:
    """A filter for objects whose team (reached through ``prefix``) the user may read."""
    if user.is_owner:
        return Q()
    return Q(**{f"{prefix}team__in": list(team_roles(user))})


def team_id_of(obj: Any) -> int:
    """The team a team-scoped object belongs to."""
    if isinstance(obj, Page | StoryVersion):
        return obj.story.team_id
    return obj.team_id


def can_manage_api_key(user: User, api_key: ApiKey) -> bool:
    """A user manages their own personal keys; owners manage every key of the tenant."""
    if user.is_owner:
        return api_key.tenant_id == user.tenant_id
    return api_key.user_id == user.pk and api_key.kind == ApiKey.Kind.PERSONAL


class IsTenantOwner(BasePermission):
    """Only the tenant's owners."""

    message = "Only tenant owners may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_owner)


class TeamPermission(BasePermission):
    """Members may read the teams they belong to; owners manage teams and their members."""

    message = "Only tenant owners may manage teams."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or request.user.is_owner


class TeamScopedPermission(BasePermission):
    """Read for the team's members, write for its admins and editors (and owners).

    Creating (or moving an object to another team) is checked by the view against the
    team named in the body, once that body is validated.
    """

    message = "Your team role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        team_id = team_id_of(obj)
        if request.method in SAFE_METHODS:
            return can_read_team(request.user, team_id)
        return can_write_team(request.user, team_id)


class ApiKeyPermission(BasePermission):
    """Own personal keys for everyone; service keys and other users' keys for owners."""

    message = "Only tenant owners may manage service keys or other users' keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return can_manage_api_key(request.user, obj)
