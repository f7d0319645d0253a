"""The domain REST API: every queryset is scoped to the caller's tenant, every write is a service.

A row of another tenant is a 404 (it is never in the queryset); a service's
``django.core.exceptions.ValidationError`` is a 400 naming the field (``exception_handler``).
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from auditlog.exceptions import exception_handler as audit_log_exception_handler

from . import services
from .models import ApiKey, Credential, Membership, Page, Resource, Story, Team, Tenant, User
from .permissions import (
    ApiKeyPermission,
    IsTenantOwner,
    TeamPermission,
    TeamScopedPermission,
    can_write_team,
    readable_team_filter,
    team_roles,
)
from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    CredentialSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    PageSerializer,
    ResourceSerializer,
    StorySerializer,
    StoryVersionSerializer,
    TeamSerializer,
    TenantSerializer,
    UserInviteSerializer,
    UserSerializer,
)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus: a service's ``ValidationError`` is a 400 naming its fields.

    A body over the upload limit is refused before any endpoint reads it, with the one
    answer every API path gives it: 413 and ``{"errors": [...]}``.
    """
    if isinstance(exc, RequestDataTooBig):
        return audit_log_exception_handler(exc, context)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=validation_detail(exc))
    return drf_exception_handler(exc, context)


def validation_detail(exc: DjangoValidationError) -> dict[str, list[str]]:
    """``{field: [messages]}``; errors of no particular field go under ``non_field_errors``."""
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if hasattr(exc, "error_dict"):
        return {
            (non_field if name == NON_FIELD_ERRORS else name): messages
            for name, messages in exc.message_dict.items()
        }
    return {non_field: exc.messages}


class ServiceViewSet(viewsets.ModelViewSet):
    """A model viewset whose writes call services; PUT is not offered (PATCH is)."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = self.create_object(dict(serializer.validated_data))

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = self.update_object(
            serializer.instance, dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: Any) -> None:
        self.delete_object(instance)

    def create_object(self, data: dict) -> Any:
        raise NotImplementedError

    def update_object(self, instance: Any, data: dict) -> Any:
        raise NotImplementedError

    def delete_object(self, instance: Any) -> None:
        raise NotImplementedError


# --- Users and the tenant ------------------------------------------------------------------


@extend_schema_view(create=extend_schema(request=UserInviteSerializer, responses=UserSerializer))
class UserViewSet(ServiceViewSet):
    """The tenant's users (owners only); deleting removes the user, keeping the row."""

    permission_classes = [IsTenantOwner]

    def get_queryset(self) -> QuerySet:
        return User.objects.filter(tenant_id=self.request.user.tenant_id, removed_at__isnull=True)

    def get_serializer_class(self) -> type:
        return UserInviteSerializer if self.action == "create" else UserSerializer

    def create_object(self, data: dict) -> User:
        return services.user_invite(tenant=self.request.user.tenant, **data)

    def update_object(self, instance: User, data: dict) -> User:
        return services.user_update(user=instance, **data)

    def delete_object(self, instance: User) -> None:
        services.user_remove(user=instance)


class TenantApi(APIView):
    """The caller's tenant settings (owners only)."""

    permission_classes = [IsTenantOwner]

    def get_object(self) -> Tenant:
        return Tenant.objects.get(pk=self.request.user.tenant_id)

    @extend_schema(responses=TenantSerializer)
    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(self.get_object()).data)

    @extend_schema(request=TenantSerializer, responses=TenantSerializer)
    def patch(self, request: Request) -> Response:
        tenant = self.get_object()
        serializer = TenantSerializer(tenant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_update(tenant=tenant, **serializer.validated_data)
        return Response(TenantSerializer(tenant).data)


# --- Teams ---------------------------------------------------------------------------------


class TeamViewSet(ServiceViewSet):
    """Teams: members list the teams they belong to; owners manage teams and members."""

    serializer_class = TeamSerializer
    permission_classes = [TeamPermission]

    def get_queryset(self) -> QuerySet:
        user = self.request.user
        teams = Team.objects.filter(tenant_id=user.tenant_id).prefetch_related("memberships")
        return teams if user.is_owner else teams.filter(pk__in=list(team_roles(user)))

    def create_object(self, data: dict) -> Team:
        return services.team_create(tenant=self.request.user.tenant, **data)

    def update_object(self, instance: Team, data: dict) -> Team:
        return services.team_update(team=instance, **data)

    def delete_object(self, instance: Team) -> None:
        services.team_delete(team=instance)

    @extend_schema(
        summary="Add a member to the team",
        request=MembershipSerializer,
        responses={201: MembershipSerializer},
    )
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request: Request, pk: str | None = None) -> Response:
        team = self.get_object()
        serializer = MembershipSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        membership = services.membership_add(team=team, **serializer.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PATCH"],
        summary="Change a member's team role",
        request=MembershipRoleSerializer,
        responses=MembershipSerializer,
    )
    @extend_schema(
        methods=["DELETE"], summary="Remove a member from the team", responses={204: None}
    )
    @action(detail=True, methods=["patch", "delete"], url_path=r"members/(?P<user_id>\d+)")
    def member(self, request: Request, pk: str | None = None, user_id: str = "") -> Response:
        membership = get_object_or_404(Membership, team=self.get_object(), user_id=user_id)
        if request.method == "DELETE":
            services.membership_remove(membership=membership)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_update(
            membership=membership, role=serializer.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)


# --- Team-scoped objects -------------------------------------------------------------------


class TeamScopedViewSet(ServiceViewSet):
    """Objects of a team: readable by its members, writable by its admins and editors."""

    permission_classes = [TeamScopedPermission]
    model: type
    team_path = ""

    def get_queryset(self) -> QuerySet:
        user = self.request.user
        return self.model.objects.filter(tenant_id=user.tenant_id).filter(
            readable_team_filter(user, self.team_path)
        )

    def check_team_write(self, team_id: int) -> None:
        """Creating in, or moving to, a team needs a writing role there."""
        if not can_write_team(self.request.user, team_id):
            raise exceptions.PermissionDenied(TeamScopedPermission.message)

    def update_object(self, instance: Any, data: dict) -> Any:
        if "team" in data:
            self.check_team_write(data["team"].pk)
        return self.update_service(instance, data)

    def update_service(self, instance: Any, data: dict) -> Any:
        raise NotImplementedError


class CredentialViewSet(TeamScopedViewSet):
    """Credentials; the value is accepted on writes and never returned."""

    model = Credential
    serializer_class = CredentialSerializer

    def get_queryset(self) -> QuerySet:
        credentials = super().get_queryset().prefetch_related("shared_with_teams")
        # Reads never show the value, so they need not decrypt it; writes load it to diff.
        return credentials.defer("value") if self.action in ("list", "retrieve") else credentials

    def create_object(self, data: dict) -> Credential:
        self.check_team_write(data["team"].pk)
        return services.credential_create(**data)

    def update_service(self, instance: Credential, data: dict) -> Credential:
        return services.credential_update(credential=instance, **data)

    def delete_object(self, instance: Credential) -> None:
        services.credential_delete(credential=instance)


class ResourceViewSet(TeamScopedViewSet):
    """Global resources: shared, non-secret values."""

    model = Resource
    serializer_class = ResourceSerializer

    def create_object(self, data: dict) -> Resource:
        self.check_team_write(data["team"].pk)
        return services.resource_create(**data)

    def update_service(self, instance: Resource, data: dict) -> Resource:
        return services.resource_update(resource=instance, **data)

    def delete_object(self, instance: Resource) -> None:
        services.resource_delete(resource=instance)


class StoryViewSet(TeamScopedViewSet):
    """Stories, their archive/restore and their versions; only archived stories are deleted."""

    model = Story
    serializer_class = StorySerializer

    def create_object(self, data: dict) -> Story:
        self.check_team_write(data["team"].pk)
        return services.story_create(**data)

    def update_service(self, instance: Story, data: dict) -> Story:
        return services.story_update(story=instance, **data)

    def delete_object(self, instance: Story) -> None:
        services.story_delete(story=instance)

    @extend_schema(summary="Archive the story", request=None, responses=StorySerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        story = services.story_archive(story=self.get_object())
        return Response(StorySerializer(story, context=self.get_serializer_context()).data)

    @extend_schema(summary="Restore the archived story", request=None, responses=StorySerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        story = services.story_restore(story=self.get_object())
        return Response(StorySerializer(story, context=self.get_serializer_context()).data)

    @extend_schema(
        methods=["GET"],
        summary="The story's versions, newest first",
        responses=StoryVersionSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Save a version of the story",
        request=StoryVersionSerializer,
        responses={201: StoryVersionSerializer},
    )
    @action(detail=True, methods=["get", "post"], serializer_class=StoryVersionSerializer)
    def versions(self, request: Request, pk: str | None = None) -> Response:
        story = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(story.versions.all())
            return self.get_paginated_response(StoryVersionSerializer(page, many=True).data)
        serializer = StoryVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.story_version_create(story=story, **serializer.validated_data)
        return Response(StoryVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PATCH"],
        summary="Rename a version",
        request=StoryVersionSerializer,
        responses=StoryVersionSerializer,
    )
    @extend_schema(methods=["DELETE"], summary="Delete a version", responses={204: None})
    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=r"versions/(?P<version_id>\d+)",
        serializer_class=StoryVersionSerializer,
    )
    def version(self, request: Request, pk: str | None = None, version_id: str = "") -> Response:
        story = self.get_object()
        version = get_object_or_404(story.versions, pk=version_id)
        if request.method == "DELETE":
            services.story_version_delete(version=version)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = StoryVersionSerializer(version, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        # A PATCH without a name changes nothing (the service needs the new name).
        if "name" in serializer.validated_data:
            version = services.story_version_rename(
                version=version, name=serializer.validated_data["name"]
            )
        return Response(StoryVersionSerializer(version).data)


class PageViewSet(TeamScopedViewSet):
    """Pages of stories, published and unpublished by their own actions."""

    model = Page
    serializer_class = PageSerializer
    team_path = "story__"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("story")

    def create_object(self, data: dict) -> Page:
        self.check_team_write(data["story"].team_id)
        return services.page_create(**data)

    def update_service(self, instance: Page, data: dict) -> Page:
        return services.page_update(page=instance, **data)

    def delete_object(self, instance: Page) -> None:
        services.page_delete(page=instance)

    @extend_schema(summary="Publish the page", request=None, responses=PageSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        return Response(PageSerializer(services.page_publish(page=self.get_object())).data)

    @extend_schema(summary="Unpublish the page", request=None, responses=PageSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str | None = None) -> Response:
        return Response(PageSerializer(services.page_unpublish(page=self.get_object())).data)


# --- API keys ------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(responses={201: ApiKeyCreatedSerializer}),
    partial_update=extend_schema(
        description="Only the name of a key can change.",
        request=inline_serializer("ApiKeyRename", {"name": serializers.CharField(max_length=200)}),
    ),
)
class ApiKeyViewSet(ServiceViewSet):
    """API keys: the raw key is shown once, in the create response; deleting revokes."""

    serializer_class = ApiKeySerializer
    permission_classes = [ApiKeyPermission]

    def get_queryset(self) -> QuerySet:
        user = self.request.user
        keys = ApiKey.objects.filter(tenant_id=user.tenant_id)
        return keys if user.is_owner else keys.filter(user=user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.setdefault("user", request.user)
        for_other = data["user"].pk != request.user.pk
        if (for_other or data.get("kind") == ApiKey.Kind.SERVICE) and not request.user.is_owner:
            raise exceptions.PermissionDenied(ApiKeyPermission.message)
        api_key, raw = services.api_key_create(**data)
        context = {**self.get_serializer_context(), "raw_key": raw}
        body = ApiKeyCreatedSerializer(api_key, context=context).data
        return Response(body, status=status.HTTP_201_CREATED)

    def update_object(self, instance: ApiKey, data: dict) -> ApiKey:
        fixed = sorted(set(data) - {"name"})
        if fixed:
            raise exceptions.ValidationError(dict.fromkeys(fixed, "Only the name can change."))
        # A PATCH without a name changes nothing (the service needs the new name).
        return services.api_key_rename(api_key=instance, **data) if data else instance

    def delete_object(self, instance: ApiKey) -> None:
        services.api_key_revoke(api_key=instance)
