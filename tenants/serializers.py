"""Validate API input and present domain objects; writes happen in ``services``.

Foreign keys in request bodies resolve only within the caller's tenant, so an id of
another tenant is a 400 "does not exist" on that field, never a link across tenants.
"""

from typing import Any

from rest_framework import serializers

from .models import (
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


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key that must name a row of the requesting user's tenant."""

    def get_queryset(self) -> Any:
        request = self.context["request"]
        queryset = super().get_queryset().filter(tenant_id=request.user.tenant_id)
        if queryset.model is User:
            queryset = queryset.filter(removed_at__isnull=True)
        return queryset


class ReadOnlyModelSerializer(serializers.ModelSerializer):
    """A serializer that validates and presents; saving is the services' job."""

    def create(self, validated_data: dict) -> Any:
        raise NotImplementedError("writes go through tenants.services")

    def update(self, instance: Any, validated_data: dict) -> Any:
        raise NotImplementedError("writes go through tenants.services")


class TenantSerializer(ReadOnlyModelSerializer):
    """The tenant's settings."""

    class Meta:
        model = Tenant
        fields = ("id", "name", "session_timeout_minutes", "created_at")
        read_only_fields = ("id", "created_at")


class UserSerializer(ReadOnlyModelSerializer):
    """A user of the tenant: tenant role and permissions (``AUDIT_LOG_READ``)."""

    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=TENANT_PERMISSIONS), required=False
    )

    class Meta:
        model = User
        fields = ("id", "email", "name", "role", "permissions", "is_active", "date_joined")
        read_only_fields = ("id", "is_active", "date_joined")


class UserInviteSerializer(UserSerializer):
    """An invitation: a new user, with an optional first password (write-only)."""

    password = serializers.CharField(
        write_only=True, required=False, allow_null=True, style={"input_type": "password"}
    )

    class Meta(UserSerializer.Meta):
        fields = (*UserSerializer.Meta.fields, "password")


class MembershipSerializer(ReadOnlyModelSerializer):
    """A user's role in a team."""

    user = TenantPrimaryKeyRelatedField(queryset=User.objects.all())

    class Meta:
        model = Membership
        fields = ("user", "role")
        # Uniqueness is the service's check: it answers with the field that collides.
        validators: list = []


class MembershipRoleSerializer(serializers.Serializer):
    """A new team role for a member."""

    role = serializers.ChoiceField(choices=Membership.Role.choices)


class TeamSerializer(ReadOnlyModelSerializer):
    """A team and its members."""

    members = MembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ("id", "name", "description", "members")
        read_only_fields = ("id",)
        validators: list = []


class CredentialSerializer(ReadOnlyModelSerializer):
    """A credential of a team; its value is write-only (never returned)."""

    team = TenantPrimaryKeyRelatedField(queryset=Team.objects.all())
    shared_with_teams = TenantPrimaryKeyRelatedField(
        queryset=Team.objects.all(), many=True, required=False
    )
    value = serializers.CharField(
        write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )

    class Meta:
        model = Credential
        fields = (
            "id",
            "name",
            "credential_type",
            "description",
            "team",
            "shared_with_teams",
            "value",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "created_at", "updated_at")


class ResourceSerializer(ReadOnlyModelSerializer):
    """A shared, non-secret value of a team (Tines' global resource)."""

    team = TenantPrimaryKeyRelatedField(queryset=Team.objects.all())

    class Meta:
        model = Resource
        fields = ("id", "team", "name", "value", "description", "updated_at")
        read_only_fields = ("id", "updated_at")


class StorySerializer(ReadOnlyModelSerializer):
    """A story of a team; archived by its own action, not by a field."""

    team = TenantPrimaryKeyRelatedField(queryset=Team.objects.all())

    class Meta:
        model = Story
        fields = (
            "id",
            "team",
            "name",
            "description",
            "enabled",
            "locked",
            "archived",
            "updated_at",
        )
        read_only_fields = ("id", "archived", "updated_at")


class StoryVersionSerializer(ReadOnlyModelSerializer):
    """A named snapshot of a story; only its name can change."""

    class Meta:
        model = StoryVersion
        fields = ("id", "story", "name", "snapshot", "created_at")
        read_only_fields = ("id", "story", "snapshot", "created_at")


class PageSerializer(ReadOnlyModelSerializer):
    """A page of a story; published by its own actions, not by a field."""

    story = TenantPrimaryKeyRelatedField(queryset=Story.objects.all())

    class Meta:
        model = Page
        fields = ("id", "story", "name", "description", "published")
        read_only_fields = ("id", "published")


class ApiKeySerializer(ReadOnlyModelSerializer):
    """An API key (never the key itself, which only the create response shows)."""

    user = TenantPrimaryKeyRelatedField(queryset=User.objects.all(), required=False)

    class Meta:
        model = ApiKey
        fields = ("id", "name", "kind", "user", "created_at", "last_used_at")
        read_only_fields = ("id", "created_at", "last_used_at")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The create response: the only time the raw key is ever shown."""

    key = serializers.SerializerMethodField()

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")

    def get_key(self, obj: ApiKey) -> str:
        return self.context["raw_key"]
