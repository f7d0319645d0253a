"""Forms of the sign-in page and the admin console; saving is left to the services."""

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.exceptions import ValidationError

from . import services, throttling
from .backends import SeveralAccounts
from .models import EMAIL_TAKEN, TENANT_PERMISSIONS, ApiKey, Credential, Membership, User

PERMISSION_CHOICES = [(p, p.replace("_", " ").capitalize()) for p in TENANT_PERMISSIONS]


SEVERAL_ACCOUNTS = (
    "This email and password open accounts in several tenants: enter the tenant's name too."
)


class SignInMixin:
    """What both sign-in forms share: emails in lower case, the optional tenant, and the
    brute-force lockout.

    ``locked_for`` is set (in seconds) when the attempt is refused for a lockout; the views
    answer 429 then (``throttling.refuse_locked_out``). The tenant is only needed when one
    password opens accounts of the email in several tenants (``tenants.backends``).
    """

    locked_for = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"] = forms.CharField(
            label="Tenant",
            required=False,
            max_length=200,
            help_text="Only needed if your email has accounts in several tenants.",
            widget=forms.TextInput(attrs={"autocomplete": "organization"}),
        )

    def clean_username(self) -> str:
        # Accounts are stored with lower-case emails; the lockout counts the address so too.
        return self.cleaned_data["username"].strip().lower()

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        if not email or not self.cleaned_data.get("password"):
            return super().clean()  # nothing to check a password against, nothing to count
        throttle = throttling.SignInThrottle(self.request, email)
        self.locked_for = throttle.admit()
        if self.locked_for:
            raise self.locked_out_error()
        try:
            cleaned = self.authenticate_account()
        except ValidationError as error:
            # The right password, refused by policy or for want of the tenant's name.
            if self.user_cache is not None or error.code == "several_accounts":
                throttle.password_passed()
                raise
            self.locked_for = throttle.password_failed()
            if self.locked_for:
                raise self.locked_out_error() from None
            raise
        throttle.password_passed()
        return cleaned

    def authenticate_account(self) -> dict[str, Any]:
        """``AuthenticationForm.clean``, with the tenant the person may have named."""
        try:
            self.user_cache = authenticate(
                self.request,
                username=self.cleaned_data["username"],
                password=self.cleaned_data["password"],
                tenant=self.cleaned_data.get("tenant") or None,
            )
        except SeveralAccounts:
            raise ValidationError(SEVERAL_ACCOUNTS, code="several_accounts") from None
        if self.user_cache is None:
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def locked_out_error(self) -> ValidationError:
        return ValidationError(throttling.locked_out_message(self.locked_for), code="locked_out")


class EmailAuthenticationForm(SignInMixin, AuthenticationForm):
    """Sign in with an email address and a password."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


class AdminEmailAuthenticationForm(SignInMixin, AdminAuthenticationForm):
    """The admin console's sign-in: the same email handling, owners only (``is_staff``)."""


class OwnerPasswordChangeForm(PasswordChangeForm):
    """The admin console's password change, saved through ``user_set_password``."""

    def save(self, commit: bool = True) -> User:
        return services.user_set_password(
            user=self.user, password=self.cleaned_data["new_password1"]
        )


class CredentialAdminForm(forms.ModelForm):
    """A credential; its value is write-only and blank on change keeps the stored one."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
    )

    class Meta:
        model = Credential
        fields = ("team", "name", "credential_type", "value", "description", "shared_with_teams")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored value must never reach a rendered page, not even as an initial value.
        self.initial.pop("value", None)
        if self.instance.pk is None:
            self.fields["value"].required = True
        else:
            self.fields["value"].help_text = "Leave blank to keep the current value."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("value") and self.instance.pk is not None:
            # Absent from cleaned_data, the field is neither copied onto the instance nor saved.
            cleaned.pop("value", None)
        return cleaned


class MembershipInlineForm(forms.ModelForm):
    """A team membership; the member of an existing row is fixed, only the role changes."""

    class Meta:
        model = Membership
        fields = ("user", "role")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            self.fields["user"].disabled = True


class UserAddForm(forms.ModelForm):
    """Invite a user: email, name, role, tenant permissions and an optional password."""

    permissions = forms.MultipleChoiceField(
        choices=PERMISSION_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
        help_text="Optional: without one, the user cannot sign in until a password is set.",
    )

    # The inviting owner's tenant, set by the admin on the form class it builds per request.
    tenant_id: int | None = None

    class Meta:
        model = User
        fields = ("email", "name", "role", "permissions", "password")

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if services.email_taken_in_tenant(tenant_id=self.tenant_id, email=email):
            raise ValidationError(EMAIL_TAKEN, code="unique")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if password:
            password_validation.validate_password(password)
        return password

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Kept off the instance: only user_invite hashes and stores it.
        self.raw_password = cleaned.pop("password", "") or None
        return cleaned


class UserChangeForm(forms.ModelForm):
    """Edit a user's email, name, role, tenant permissions and status."""

    permissions = forms.MultipleChoiceField(
        choices=PERMISSION_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = User
        fields = ("email", "name", "role", "permissions", "is_active")

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if services.email_taken_in_tenant(
            tenant_id=self.instance.tenant_id, email=email, user=self.instance
        ):
            raise ValidationError(EMAIL_TAKEN, code="unique")
        return email


class ApiKeyAddForm(forms.ModelForm):
    """Create an API key for a user of the tenant."""

    class Meta:
        model = ApiKey
        fields = ("name", "kind", "user")
