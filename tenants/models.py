"""The audited domain: tenants, their people, teams and the things they build."""

import hashlib
import secrets

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models.functions import Lower

from auditlog.permissions import AUDIT_LOG_READ
from auditlog.querysets import AuditedModel, AuditedQuerySet

from .fields import EncryptedTextField

TENANT_PERMISSIONS = (AUDIT_LOG_READ,)

# Bounds of a tenant's session timeout: 5 minutes to 30 days. Below 5 a session ends
# while a page is being read; 0 would mean "until the browser closes" to Django, which
# the server keeps for SESSION_COOKIE_AGE (14 days), the longest session of all.
SESSION_TIMEOUT_MIN_MINUTES = 5
SESSION_TIMEOUT_MAX_MINUTES = 30 * 24 * 60

EMAIL_TAKEN = "A user with this email already exists in this tenant."


class Tenant(AuditedModel):
    """A customer: every other row belongs to exactly one tenant."""

    name = models.CharField(max_length=200, unique=True)
    session_timeout_minutes = models.PositiveIntegerField(
        default=720,
        validators=[
            MinValueValidator(SESSION_TIMEOUT_MIN_MINUTES),
            MaxValueValidator(SESSION_TIMEOUT_MAX_MINUTES),
        ],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def session_timeout_seconds(self) -> int:
        """The session's lifetime, always within the bounds (a row written around the model
        validators, e.g. by SQL, must not give an endless or browser-long session)."""
        minutes = self.session_timeout_minutes or 0
        bounded = min(max(minutes, SESSION_TIMEOUT_MIN_MINUTES), SESSION_TIMEOUT_MAX_MINUTES)
        return bounded * 60


class UserManager(BaseUserManager.from_queryset(AuditedQuerySet)):
    """Creates users by email."""

    use_in_migrations = True

    @transaction.atomic
    def create_user(self, email: str, password: str | None = None, **fields):
        # Lower case, as the services store it and the sign-in looks it up; validated, so
        # ``createsuperuser`` answers a duplicate in the tenant with a message, not a traceback.
        if isinstance(fields.get("tenant"), int | str):
            fields["tenant_id"] = fields.pop("tenant")  # createsuperuser passes the tenant's id
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.full_clean()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("role", User.Role.OWNER)
        return self.create_user(email, password, **fields)


class User(AuditedModel, AbstractBaseUser):
    """A person's account in one tenant, signing in with an email address.

    An address is unique within its tenant only: the same person may hold an account in
    several tenants, each with its own password (``tenants.backends`` signs in the one
    whose password matches).
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="users")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    permissions = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["tenant"]

    class Meta(AuditedModel.Meta):
        ordering = ("email",)
        constraints = [
            # Led by the address: the sign-in looks an email up across tenants by this index.
            models.UniqueConstraint(
                Lower("email"),
                "tenant",
                name="user_email_unique_in_tenant",
                violation_error_message=EMAIL_TAKEN,
            )
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_owner(self) -> bool:
        return self.is_active and self.role == self.Role.OWNER

    @property
    def is_staff(self) -> bool:
        """Only tenant owners may enter the admin console."""
        return self.is_owner

    @property
    def is_superuser(self) -> bool:
        return False

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_owner

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_owner

    def has_tenant_permission(self, permission: str) -> bool:
        """Owners hold every tenant permission; members hold the ones granted to them."""
        return self.is_active and (self.is_owner or permission in (self.permissions or []))

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email


class Team(AuditedModel):
    """A group of users that owns credentials, resources and stories."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(User, through="Membership", related_name="teams")

    class Meta(AuditedModel.Meta):
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="team_name_unique_in_tenant")
        ]

    def __str__(self) -> str:
        return self.name


class Membership(AuditedModel):
    """A user's role in a team."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Team admin"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta(AuditedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Credential(AuditedModel):
    """A secret used by stories; its value is write-only and encrypted at rest."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        AWS = "aws", "AWS"
        HTTP_REQUEST = "http_request", "HTTP request"
        JWT = "jwt", "JWT"
        OAUTH = "oauth", "OAuth 2.0"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=200)
    credential_type = models.CharField(max_length=32, choices=Type.choices, default=Type.TEXT)
    value = EncryptedTextField()
    description = models.TextField(blank=True)
    shared_with_teams = models.ManyToManyField(Team, blank=True, related_name="shared_credentials")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(AuditedModel.Meta):
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Resource(AuditedModel):
    """A shared, non-secret value (Tines' global resource)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="resources")
    name = models.CharField(max_length=200)
    value = models.TextField(blank=True)
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(AuditedModel.Meta):
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Story(AuditedModel):
    """An automation workflow."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="stories")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    locked = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(AuditedModel.Meta):
        ordering = ("name",)
        verbose_name_plural = "stories"

    def __str__(self) -> str:
        return self.name


class StoryVersion(AuditedModel):
    """A named snapshot of a story."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=200)
    snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(AuditedModel.Meta):
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return self.name


class Page(AuditedModel):
    """A page (form or app) that a story serves."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="pages")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    published = models.BooleanField(default=False)

    class Meta(AuditedModel.Meta):
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ApiKey(AuditedModel):
    """An API key; the key itself is shown once and stored only as a SHA-256 hash."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", "Personal"
        SERVICE = "service", "Service"

    PREFIX = "tak_"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSONAL)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AuditedModel.Meta):
        ordering = ("-created_at", "-id")
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def generate(cls) -> str:
        """A new random key, e.g. ``tak_3f9c…``."""
        return cls.PREFIX + secrets.token_urlsafe(32)
