"""The admin console for tenant owners: every row scoped to the owner's tenant, every write
made by a service (so each one is audited like any other)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect

from auditlog.admin import AuditLogEntryAdmin
from auditlog.models import AuditLogEntry

from . import services
from .forms import (
    AdminEmailAuthenticationForm,
    ApiKeyAddForm,
    CredentialAdminForm,
    MembershipInlineForm,
    OwnerPasswordChangeForm,
    UserAddForm,
    UserChangeForm,
)
from .models import (
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
from .throttling import refuse_locked_out


class TenantAdminSite(admin.AdminSite):
    """Only active owners of a tenant may enter; they see only their tenant."""

    site_header = "Admin console"
    site_title = "Admin console"
    index_title = "Your tenant"
    login_form = AdminEmailAuthenticationForm
    password_change_form = OwnerPasswordChangeForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_authenticated and getattr(user, "is_owner", False))

    @login_not_required
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Django's admin sign-in, with the sign-in page's lockout answer (429)."""
        return refuse_locked_out(super().login(request, extra_context))


site = TenantAdminSite(name="tenant_admin")


def _tenant_scope(model: type[models.Model], tenant_id: int) -> QuerySet:
    """The rows of ``model`` a form of this tenant may point at."""
    queryset = model._default_manager.all()
    if model is Tenant:
        return queryset.filter(pk=tenant_id)
    queryset = queryset.filter(tenant_id=tenant_id)
    if model is User:
        queryset = queryset.filter(is_active=True)
    return queryset


def _adopt(target: models.Model, created: models.Model) -> None:
    """Make the admin's unsaved instance the row the service created (pk, state and all)."""
    target.__dict__.update(created.__dict__)


def _report(request: HttpRequest, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            for message in errors:
                label = "" if field == "__all__" else f"{field}: "
                messages.error(request, f"{label}{message}")
    else:
        for message in error.messages:
            messages.error(request, message)


class TenantScopedMixin:
    """Querysets, object lookups and relation choices limited to the user's tenant."""

    tenant_lookup = "tenant_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset.filter(**{self.tenant_lookup: request.user.tenant_id})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["queryset"] = _tenant_scope(db_field.related_model, request.user.tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["queryset"] = _tenant_scope(db_field.related_model, request.user.tenant_id)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class TenantModelAdmin(TenantScopedMixin, admin.ModelAdmin):
    """Base of the console's model admins: scoped reads, service writes, no 500s.

    Subclasses implement ``create`` / ``update`` / ``delete`` with the entity's services.
    A service's ``ValidationError`` rolls the whole request's change back and is shown as
    an error message on the page the owner came from.
    """

    # --- reading ---------------------------------------------------------------------

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Another tenant's id (or none at all): not found, without a hint of existence.
            raise Http404("Not found.")
        return obj

    # --- writing through services ----------------------------------------------------

    def create(self, request: HttpRequest, form: ModelForm) -> models.Model:
        raise NotImplementedError

    def update(self, request: HttpRequest, obj: Any, form: ModelForm, changed: dict) -> None:
        raise NotImplementedError

    def delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def changed_fields(self, form: ModelForm) -> dict[str, Any]:
        return {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in form.cleaned_data and not form.fields[name].disabled
        }

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if change:
            changed = self.changed_fields(form)
            if changed:
                self.update(request, obj, form, changed)
        else:
            _adopt(obj, self.create(request, form))

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: list, change: bool):
        # Many-to-many fields are passed to the services by save_model; only inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: Any, change: bool):
        raise NotImplementedError(f"{type(self).__name__} has no inline writes")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.delete(request, obj)

    # --- service errors become messages ------------------------------------------------

    def _guarded(self, request: HttpRequest, view: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with transaction.atomic():
                return view(request, *args, **kwargs)
        except ValidationError as error:
            _report(request, error)
            return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._guarded(request, super().changeform_view, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._guarded(request, super().delete_view, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._guarded(request, super().changelist_view, *args, **kwargs)


def _inline_writes(formset: BaseInlineFormSet) -> tuple[list, list, list]:
    """The new, changed and deleted rows of an inline formset, without saving any."""
    formset.save(commit=False)
    return formset.new_objects, formset.changed_objects, formset.deleted_objects


# --- Tenant ------------------------------------------------------------------------------


class TenantAdmin(TenantModelAdmin):
    """The owner's own tenant: its name and session timeout."""

    tenant_lookup = "pk"
    fields = ("name", "session_timeout_minutes")
    list_display = ("name", "session_timeout_minutes", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def update(self, request: HttpRequest, obj: Tenant, form: ModelForm, changed: dict) -> None:
        services.tenant_update(tenant=obj, **changed)


# --- Users -------------------------------------------------------------------------------


class UserAdmin(TenantModelAdmin):
    """Invite, edit and remove (deactivate) the tenant's users; nobody is hard-deleted."""

    list_display = ("email", "name", "role", "is_active", "removed_at")
    list_filter = ("role", "is_active")
    search_fields = ("email", "name")
    readonly_fields = ("last_login", "date_joined", "removed_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("email", "name", "role", "permissions", "password")
        return ("email", "name", "role", "permissions", "is_active", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = UserAddForm if obj is None else UserChangeForm
        form = super().get_form(request, obj, **kwargs)
        form.tenant_id = request.user.tenant_id  # a class made for this request alone
        return form

    def create(self, request: HttpRequest, form: ModelForm) -> User:
        data = form.cleaned_data
        return services.user_invite(
            tenant=request.user.tenant,
            email=data["email"],
            name=data.get("name", ""),
            role=data["role"],
            permissions=list(data.get("permissions") or ()),
            password=form.raw_password,
        )

    def update(self, request: HttpRequest, obj: User, form: ModelForm, changed: dict) -> None:
        if "permissions" in changed:
            changed["permissions"] = list(changed["permissions"])
        services.user_update(user=obj, **changed)

    def delete(self, request: HttpRequest, obj: User) -> None:
        services.user_remove(user=obj)


# --- Teams -------------------------------------------------------------------------------


class MembershipInline(TenantScopedMixin, admin.TabularInline):
    """The members of a team and their roles."""

    model = Membership
    form = MembershipInlineForm
    fk_name = "team"
    fields = ("user", "role")
    extra = 0


class TeamAdmin(TenantModelAdmin):
    """Teams and their members."""

    list_display = ("name", "description")
    search_fields = ("name",)
    fields = ("name", "description")
    inlines = (MembershipInline,)

    def create(self, request: HttpRequest, form: ModelForm) -> Team:
        data = form.cleaned_data
        return services.team_create(
            tenant=request.user.tenant, name=data["name"], description=data.get("description", "")
        )

    def update(self, request: HttpRequest, obj: Team, form: ModelForm, changed: dict) -> None:
        services.team_update(team=obj, **changed)

    def delete(self, request: HttpRequest, obj: Team) -> None:
        services.team_delete(team=obj)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: Any, change: bool):
        new, changed, deleted = _inline_writes(formset)
        for membership in deleted:
            services.membership_remove(membership=membership)
        for membership, _fields in changed:
            services.membership_update(membership=membership, role=membership.role)
        for membership in new:
            services.membership_add(team=form.instance, user=membership.user, role=membership.role)


# --- Credentials and resources -------------------------------------------------------------


class CredentialAdmin(TenantModelAdmin):
    """Credentials; the value is write-only and never displayed."""

    form = CredentialAdminForm
    fields = ("team", "name", "credential_type", "value", "description", "shared_with_teams")
    list_display = ("name", "team", "credential_type", "updated_at")
    list_filter = ("credential_type",)
    search_fields = ("name",)

    def create(self, request: HttpRequest, form: ModelForm) -> Credential:
        data = form.cleaned_data
        return services.credential_create(
            team=data["team"],
            name=data["name"],
            value=data["value"],
            credential_type=data["credential_type"],
            description=data.get("description", ""),
            shared_with_teams=list(data.get("shared_with_teams") or ()),
        )

    def update(self, request: HttpRequest, obj: Credential, form: ModelForm, changed: dict):
        if "shared_with_teams" in changed:
            changed["shared_with_teams"] = list(changed["shared_with_teams"])
        services.credential_update(credential=obj, **changed)

    def delete(self, request: HttpRequest, obj: Credential) -> None:
        services.credential_delete(credential=obj)


class ResourceAdmin(TenantModelAdmin):
    """Global resources: shared, non-secret values."""

    fields = ("team", "name", "value", "description")
    list_display = ("name", "team", "updated_at")
    search_fields = ("name",)

    def create(self, request: HttpRequest, form: ModelForm) -> Resource:
        data = form.cleaned_data
        return services.resource_create(
            team=data["team"],
            name=data["name"],
            value=data.get("value", ""),
            description=data.get("description", ""),
        )

    def update(self, request: HttpRequest, obj: Resource, form: ModelForm, changed: dict):
        services.resource_update(resource=obj, **changed)

    def delete(self, request: HttpRequest, obj: Resource) -> None:
        services.resource_delete(resource=obj)


# --- Stories, versions and pages ----------------------------------------------------------


class StoryVersionInline(TenantScopedMixin, admin.TabularInline):
    """Named snapshots of a story: added and deleted here, never edited."""

    model = StoryVersion
    fields = ("name", "created_at")
    readonly_fields = ("created_at",)
    extra = 0

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StoryAdmin(TenantModelAdmin):
    """Stories; archiving and restoring are their own operations; only archived ones delete."""

    list_display = ("name", "team", "enabled", "locked", "archived", "updated_at")
    list_filter = ("archived", "enabled")
    search_fields = ("name",)
    inlines = (StoryVersionInline,)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("team", "name", "description")
        return ("team", "name", "description", "enabled", "locked", "archived")

    def create(self, request: HttpRequest, form: ModelForm) -> Story:
        data = form.cleaned_data
        return services.story_create(
            team=data["team"], name=data["name"], description=data.get("description", "")
        )

    def update(self, request: HttpRequest, obj: Story, form: ModelForm, changed: dict) -> None:
        archived = changed.pop("archived", None)
        obj.archived = form.initial.get("archived", obj.archived)
        if changed:
            services.story_update(story=obj, **changed)
        if archived is True:
            services.story_archive(story=obj)
        elif archived is False:
            services.story_restore(story=obj)

    def delete(self, request: HttpRequest, obj: Story) -> None:
        services.story_delete(story=obj)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: Any, change: bool):
        new, _changed, deleted = _inline_writes(formset)
        for version in deleted:
            services.story_version_delete(version=version)
        for version in new:
            services.story_version_create(story=form.instance, name=version.name)


class StoryVersionAdmin(TenantModelAdmin):
    """Story versions: created from a story's current state, deleted, never edited."""

    list_display = ("name", "story", "created_at")
    search_fields = ("name",)
    readonly_fields = ("snapshot", "created_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("story", "name") if obj is None else ("story", "name", "snapshot", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def create(self, request: HttpRequest, form: ModelForm) -> StoryVersion:
        data = form.cleaned_data
        return services.story_version_create(story=data["story"], name=data["name"])

    def delete(self, request: HttpRequest, obj: StoryVersion) -> None:
        services.story_version_delete(version=obj)


class PageAdmin(TenantModelAdmin):
    """Pages of stories; publishing and unpublishing are their own operations."""

    fields = ("story", "name", "description", "published")
    list_display = ("name", "story", "published")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A page stays with the story it was created for.
        return () if obj is None else ("story",)

    list_filter = ("published",)
    search_fields = ("name",)

    def create(self, request: HttpRequest, form: ModelForm) -> Page:
        data = form.cleaned_data
        page = services.page_create(
            story=data["story"], name=data["name"], description=data.get("description", "")
        )
        if data.get("published"):
            services.page_publish(page=page)
        return page

    def update(self, request: HttpRequest, obj: Page, form: ModelForm, changed: dict) -> None:
        published = changed.pop("published", None)
        obj.published = form.initial.get("published", obj.published)
        if changed:
            services.page_update(page=obj, **changed)
        if published is True:
            services.page_publish(page=obj)
        elif published is False:
            services.page_unpublish(page=obj)

    def delete(self, request: HttpRequest, obj: Page) -> None:
        services.page_delete(page=obj)


# --- API keys -------------------------------------------------------------------------------


class ApiKeyAdmin(TenantModelAdmin):
    """API keys: created (the key is shown once) and revoked; never shown or edited again."""

    form = ApiKeyAddForm
    list_display = ("name", "kind", "user", "created_at", "last_used_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "kind", "user")
        return ("name", "kind", "user", "created_at", "last_used_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def create(self, request: HttpRequest, form: ModelForm) -> ApiKey:
        data = form.cleaned_data
        api_key, raw = services.api_key_create(
            user=data["user"], name=data["name"], kind=data["kind"]
        )
        messages.warning(
            request,
            f"The new API key is {raw} — copy it now: it will not be shown again.",
        )
        return api_key

    def delete(self, request: HttpRequest, obj: ApiKey) -> None:
        services.api_key_revoke(api_key=obj)


site.register(Tenant, TenantAdmin)
site.register(User, UserAdmin)
site.register(Team, TeamAdmin)
site.register(Credential, CredentialAdmin)
site.register(Resource, ResourceAdmin)
site.register(Story, StoryAdmin)
site.register(StoryVersion, StoryVersionAdmin)
site.register(Page, PageAdmin)
site.register(ApiKey, ApiKeyAdmin)
site.register(AuditLogEntry, AuditLogEntryAdmin)
