"""Thin receivers of the domain's own concerns (the audit log's are in ``auditlog.signals``)."""

from typing import Any

from django.contrib.auth import signals as auth_signals


def expire_session_with_tenant(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Every sign-in lasts as long as the person's tenant allows, whichever page it came from.

    Django's ``login()`` sends ``user_logged_in`` after it has set up the session, so this one
    place covers ``/login/``, the admin console's sign-in and any other caller of ``login()``.
    The seconds are always positive: ``set_expiry(0)`` would mean a browser-session cookie
    that the server keeps for ``SESSION_COOKIE_AGE``, not a short session.
    """
    session = getattr(request, "session", None)
    if session is not None:
        session.set_expiry(user.tenant.session_timeout_seconds)


auth_signals.user_logged_in.connect(expire_session_with_tenant, dispatch_uid="tenants.session")
