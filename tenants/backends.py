"""Sign-in with per-tenant accounts: one email may have an account in several tenants.

``TenantAccountBackend`` checks the password against every active account with the email
(or only the named tenant's, when the sign-in form's optional Tenant field is filled in)
and signs in the one it opens. What holds:

- The answer never says whether, or in how many tenants, the email has an account: no
  match is the same "invalid login" whatever the reason, and a password is always hashed,
  even when no account has one to compare with.
- A password that opens accounts in several tenants signs in none of them: the form asks
  for the tenant (``SeveralAccounts``). Only someone who knows that password learns that.
- The time taken grows with the number of accounts holding the email (one hash each), which
  filling in the Tenant field removes (docs/decisions.md).
"""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db.models.functions import Lower
from django.http import HttpRequest

from .models import User


class SeveralAccounts(Exception):
    """The password is right for accounts in more than one tenant: the tenant must be named."""


class TenantAccountBackend(ModelBackend):
    """Email and password (and optionally the tenant's name) to the one account they open."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = username or kwargs.get(User.USERNAME_FIELD)
        if not email or password is None:
            return None
        accounts = (
            User._default_manager.select_related("tenant")
            .alias(email_lower=Lower("email"))  # the per-tenant unique index's expression
            .filter(email_lower=email.strip().lower(), is_active=True)
        )
        if tenant and tenant.strip():
            accounts = accounts.filter(tenant__name__iexact=tenant.strip())
        candidates = list(accounts)
        if not candidates:
            # As ModelBackend does: the hash a real account would cost, so timing cannot tell
            # (Django's check_password hashes for an account without a usable password too).
            User().set_password(password)
            return None
        opened = [a for a in candidates if a.check_password(password)]
        if len(opened) > 1:
            raise SeveralAccounts
        return opened[0] if opened else None
