"""Builders for test data; every write goes through the services, as in production."""

import itertools
import re

from django.db import connection

from tenants import services
from tenants.models import AUDIT_LOG_READ, User

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def tenant(name: str | None = None):
    return services.tenant_create(name=name or f"Tenant {next(_seq)}")


def user(tenant, *, role: str = User.Role.MEMBER, permissions=(), email: str | None = None):
    n = next(_seq)
    return services.user_invite(
        tenant=tenant,
        email=email or f"user{n}@example.test",
        name=f"User {n}",
        role=role,
        permissions=list(permissions),
        password=PASSWORD,
    )


def owner(tenant):
    return user(tenant, role=User.Role.OWNER)


def reader(tenant):
    return user(tenant, permissions=[AUDIT_LOG_READ])


def team(tenant, name: str | None = None):
    return services.team_create(tenant=tenant, name=name or f"Team {next(_seq)}")


def story(team, name: str | None = None):
    return services.story_create(team=team, name=name or f"Story {next(_seq)}")


def role_name(suffix: str) -> str:
    """A database role name of this run's own: roles are cluster-wide, test databases not."""
    database = re.sub(r"[^a-z0-9_]", "_", connection.settings_dict["NAME"].lower())
    return f"{database}_{suffix}"[:63]
