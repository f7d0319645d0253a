from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """The audited domain; registers its models with the audit log."""

    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog import names
        from auditlog.signals import audit

        from . import models as m
        from . import signals  # noqa: F401  (connects the session-expiry receiver)

        audit(
            m.Tenant,
            target_type="tenant",
            create="TenantCreation",
            update="TenantConfigChange",
            delete=None,
            tenant_attname="id",
        )
        audit(
            m.User,
            target_type="user",
            create="UsersInvitation",
            update="UserEdit",
            delete="UserDeletion",
            field_operations={
                "role": "UserRoleChange",
                "permissions": "UserPermissionsChange",
                "password": "UserPasswordChange",
                "removed_at": lambda removed: "UserDeletion" if removed else "UserEdit",
            },
            exclusive_operations=frozenset({"UserDeletion"}),
            secret_fields=frozenset({"password"}),
            exclude_fields=frozenset({"last_login", "date_joined"}),
            repr_attname="email",
        )
        audit(
            m.Team,
            target_type="team",
            create="TeamCreation",
            update="TeamUpdate",
            delete="TeamDestruction",
        )
        audit(
            m.Membership,
            target_type="team_membership",
            create="TeamMembersAddition",
            update="TeamMemberRoleChange",
            delete="TeamMemberRemoval",
            repr_attname=None,
        )
        audit(
            m.Credential,
            target_type="credential",
            create="CredentialSave",
            update="CredentialSave",
            delete="CredentialDestruction",
            secret_fields=frozenset({"value"}),
            exclude_fields=frozenset({"created_at", "updated_at"}),
            m2m_fields=("shared_with_teams",),
        )
        audit(
            m.Resource,
            target_type="resource",
            create="GlobalResourceCreation",
            update="GlobalResourceEdit",
            delete="GlobalResourceDestruction",
            exclude_fields=frozenset({"updated_at"}),
        )
        audit(
            m.Story,
            target_type="story",
            create="StoryCreation",
            # Every editable field has its own operation; moving teams is what is left.
            update="StoryMovement",
            delete="ArchivedStoryDeletion",
            field_operations={
                "name": "StoryNameChange",
                "description": "StoryDescriptionChange",
                "enabled": "StoryDisabledChange",
                "locked": "StoryLockedChange",
                "archived": lambda archived: "StoryArchive" if archived else "StoryRestore",
            },
            exclude_fields=frozenset({"updated_at"}),
            story_attname="id",
        )
        audit(
            m.StoryVersion,
            target_type="story_version",
            create="StoryVersionCreate",
            update="StoryVersionNameChange",
            delete="StoryVersionDeletion",
            exclude_fields=frozenset({"created_at"}),
            story_attname="story_id",
        )
        audit(
            m.Page,
            target_type="page",
            create="PageCreation",
            update="PageUpdate",
            delete="PageDestruction",
            field_operations={
                "published": lambda published: "PagePublish" if published else "PageUnpublish",
            },
            story_attname="story_id",
        )
        audit(
            m.ApiKey,
            target_type="api_key",
            create="AuthenticationTokenCreation",
            update="AuthenticationTokenEdit",
            delete="AuthenticationTokenDeletion",
            secret_fields=frozenset({"key_hash"}),
            exclude_fields=frozenset({"last_used_at", "created_at"}),
            create_inputs=lambda key: {
                "inputs": {"name": key.name, "isServiceToken": key.kind == m.ApiKey.Kind.SERVICE}
            },
            delete_inputs=lambda key: {"inputs": {"authenticationTokenId": key.pk}},
        )

        # What the audit log may call these rows when an entry points at one (never a secret).
        names.register("tenant", m.Tenant, tenant_field="id")
        names.register(
            "user", m.User, label=lambda u: f"{u.name} <{u.email}>" if u.name else u.email
        )
        names.register("team", m.Team)
        names.register("team_membership", m.Membership, select_related=("user", "team"))
        names.register("credential", m.Credential)
        names.register("resource", m.Resource)
        names.register("story", m.Story)
        names.register("story_version", m.StoryVersion)
        names.register("page", m.Page)
        names.register(
            "api_key",
            m.ApiKey,
            label=lambda k: f"{k.name} ({k.user.email})",
            select_related=("user",),
        )
