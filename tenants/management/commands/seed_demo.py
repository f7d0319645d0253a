"""Create demo tenants with logins, API keys and a realistic audit history.

Every write goes through ``tenants.services`` under a ``system`` audit context, so the
history it leaves is exactly what the capture records in production. Running it again
keeps the tenants it made and only issues a fresh "demo key" for each demo user (keys
are stored hashed, so an old key cannot be shown again).

The passwords below are fixed DEMO passwords for local development only.
"""

import json
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from auditlog.context import ACTOR_SYSTEM, audit_context
from tenants import services
from tenants.models import AUDIT_LOG_READ, Credential, Membership, Tenant, User

DEMO_KEY_NAME = "demo key"


@dataclass(frozen=True)
class DemoUser:
    """One demo login of a tenant."""

    local_part: str
    name: str
    role: str
    permissions: tuple[str, ...]
    password: str


# Demo only: these passwords are printed by the command and must never be used elsewhere.
DEMO_USERS = (
    DemoUser("owner", "Olivia Owner", User.Role.OWNER, (), "demo-owner-password"),
    DemoUser(
        "auditor", "Arun Auditor", User.Role.MEMBER, (AUDIT_LOG_READ,), "demo-auditor-password"
    ),
    DemoUser("member", "Mia Member", User.Role.MEMBER, (), "demo-member-password"),
)


@dataclass(frozen=True)
class DemoTenant:
    """A demo tenant and the names of what it builds."""

    name: str
    domain: str
    teams: tuple[str, str]
    stories: tuple[str, str, str]


DEMO_TENANTS = (
    DemoTenant(
        name="Acme Security",
        domain="acme.example",
        teams=("Security Operations", "Detection Engineering"),
        stories=("Phishing triage", "Alert enrichment", "Legacy ticket sync"),
    ),
    DemoTenant(
        name="Globex Automation",
        domain="globex.example",
        teams=("IT Automation", "Platform"),
        stories=("Employee onboarding", "Access review", "Old VPN provisioning"),
    ),
)


def _email(spec: DemoTenant, local_part: str) -> str:
    return f"{local_part}@{spec.domain}"


def _invite(tenant: Tenant, spec: DemoTenant, demo: DemoUser, **overrides) -> User:
    fields = {
        "name": demo.name,
        "role": demo.role,
        "permissions": list(demo.permissions),
        "password": demo.password,
        **overrides,
    }
    return services.user_invite(tenant=tenant, email=_email(spec, demo.local_part), **fields)


def _build_tenant(spec: DemoTenant) -> Tenant:
    """A new tenant with its people, teams, secrets and stories, and a history of edits."""
    tenant = services.tenant_create(name=spec.name)

    # People. The auditor is granted AUDIT_LOG_READ after joining; the member's name is
    # completed later; a contractor is promoted, demoted and finally offboarded.
    owner_spec, auditor_spec, member_spec = DEMO_USERS
    owner = _invite(tenant, spec, owner_spec)
    auditor = _invite(tenant, spec, auditor_spec, permissions=[])
    member = _invite(tenant, spec, member_spec, name=member_spec.name.split()[0])
    services.user_update(user=auditor, permissions=list(auditor_spec.permissions))
    services.user_update(user=member, name=member_spec.name)
    contractor = services.user_invite(
        tenant=tenant, email=_email(spec, "contractor"), name="Casey Contractor"
    )
    services.user_update(user=contractor, role=User.Role.OWNER)
    services.user_update(user=contractor, role=User.Role.MEMBER)

    # Teams and memberships.
    main_team = services.team_create(tenant=tenant, name=spec.teams[0])
    other_team = services.team_create(tenant=tenant, name=spec.teams[1])
    services.team_update(team=main_team, description=f"{spec.teams[0]} at {spec.name}.")
    services.membership_add(team=main_team, user=owner, role=Membership.Role.ADMIN)
    services.membership_add(team=main_team, user=member, role=Membership.Role.EDITOR)
    services.membership_add(team=main_team, user=auditor, role=Membership.Role.VIEWER)
    other_membership = services.membership_add(team=other_team, user=member)
    services.membership_update(membership=other_membership, role=Membership.Role.EDITOR)
    services.membership_add(team=other_team, user=contractor, role=Membership.Role.EDITOR)

    # Credentials (dummy values) and resources.
    webhook = services.credential_create(
        team=main_team,
        name="Slack webhook",
        value="demo-not-a-real-secret-1",
        description="Posts triage results to #security.",
    )
    services.credential_update(credential=webhook, value="demo-not-a-real-secret-rotated")
    services.credential_create(
        team=other_team,
        name="AWS read-only",
        value='{"access_key_id": "DEMO", "secret_access_key": "demo-not-a-real-secret-2"}',
        credential_type=Credential.Type.AWS,
        shared_with_teams=[main_team],
    )
    domains = services.resource_create(
        team=main_team, name="Allowed domains", value="example.com\nexample.org"
    )
    services.resource_update(resource=domains, value="example.com\nexample.org\nexample.net")
    services.resource_create(
        team=other_team, name="On-call rota", value="https://oncall.example/rota"
    )

    # Stories, versions and pages.
    first, second, third = spec.stories
    story = services.story_create(team=main_team, name=first)
    services.story_version_create(story=story, name="v1: initial")
    services.story_update(story=story, name=f"{first} and response")
    services.story_version_create(story=story, name="v2: auto-close benign reports")
    form = services.page_create(story=story, name=f"Report: {first.lower()}")
    services.page_publish(page=form)

    enrichment = services.story_create(team=other_team, name=second)
    services.story_update(story=enrichment, locked=True)
    services.story_archive(story=enrichment)
    services.story_restore(story=enrichment)
    status = services.page_create(story=enrichment, name=f"{second} status")
    services.page_publish(page=status)
    services.page_unpublish(page=status)

    legacy = services.story_create(team=other_team, name=third)
    services.story_update(story=legacy, enabled=False)
    services.story_archive(story=legacy)

    # Access control: a short-lived CI key, the contractor's offboarding, a settings change.
    ci_key, _ = services.api_key_create(user=owner, name="CI pipeline")
    services.api_key_revoke(api_key=ci_key)
    services.api_key_create(user=contractor, name="contractor laptop")
    services.user_remove(user=contractor)
    services.tenant_update(tenant=tenant, session_timeout_minutes=480)
    return tenant


def _demo_user(tenant: Tenant, spec: DemoTenant, demo: DemoUser) -> User:
    """The demo user of an existing tenant, recreated or given its demo password if needed."""
    email = _email(spec, demo.local_part)
    user = User.objects.filter(tenant=tenant, email=email).first()
    if user is None:
        return _invite(tenant, spec, demo)
    if not user.is_active:
        raise CommandError(f"Demo user {email} has been removed; use a fresh database.")
    if not user.check_password(demo.password):
        services.user_set_password(user=user, password=demo.password)
    return user


def _fresh_key(user: User) -> str:
    """Revoke the user's previous demo key, if any, and issue a new one."""
    for old in user.api_keys.filter(name=DEMO_KEY_NAME):
        services.api_key_revoke(api_key=old)
    return services.api_key_create(user=user, name=DEMO_KEY_NAME)[1]


class Command(BaseCommand):
    help = (
        "Create demo tenants (owner, AUDIT_LOG_READ user, member; demo passwords and API "
        "keys) with a realistic audit history. Idempotent: a re-run issues fresh API keys."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print only the logins as JSON: {tenants: [{id, name, users: [...]}]}.",
        )

    def handle(self, *args, **options) -> None:
        result = []
        with audit_context(actor_type=ACTOR_SYSTEM), transaction.atomic():
            for spec in DEMO_TENANTS:
                tenant = Tenant.objects.filter(name=spec.name).first()
                created = tenant is None
                if created:
                    tenant = _build_tenant(spec)
                users = []
                for demo in DEMO_USERS:
                    user = _demo_user(tenant, spec, demo)
                    users.append(
                        {
                            "email": user.email,
                            "password": demo.password,
                            "role": user.role,
                            "permissions": list(user.permissions or []),
                            "api_key": _fresh_key(user),
                        }
                    )
                result.append({"id": tenant.pk, "name": tenant.name, "users": users})
                if not options["json"]:
                    verb = "Created" if created else "Kept existing"
                    self.stderr.write(f"{verb} tenant {tenant.name!r}; issued fresh demo keys.")

        if options["json"]:
            self.stdout.write(json.dumps({"tenants": result}, indent=2))
        else:
            self._table(result)

    def _table(self, tenants: list[dict]) -> None:
        self.stdout.write("Demo logins (demo passwords: for local development only)")
        header = ("EMAIL", "PASSWORD", "ROLE", "PERMISSIONS", "API KEY")
        for tenant in tenants:
            rows = [
                (
                    u["email"],
                    u["password"],
                    u["role"],
                    ",".join(u["permissions"]) or "-",
                    u["api_key"],
                )
                for u in tenant["users"]
            ]
            widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
            self.stdout.write(f"\n{tenant['name']} (tenant id {tenant['id']})")
            for row in (header, *rows):
                cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                self.stdout.write(("  " + "  ".join(cells)).rstrip())
