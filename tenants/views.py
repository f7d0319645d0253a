"""Sign-in, sign-out and the home page."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from .forms import EmailAuthenticationForm
from .throttling import refuse_locked_out

SETTINGS_URL_NAME = "settings"


class LoginView(auth_views.LoginView):
    """Email and password, with the brute-force lockout of ``tenants.throttling``.

    ``Login`` and ``LoginFailure`` entries come from Django's auth signals, and so does the
    session's expiry (``tenants.signals``), the same for the admin console's sign-in.
    """

    form_class = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return refuse_locked_out(super().post(request, *args, **kwargs))


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only, CSRF-protected); ``Logout`` is recorded by the auth signal."""

    http_method_names = ["post", "options"]


def _settings_url() -> str | None:
    """The Settings pages, once they are routed."""
    try:
        return reverse(SETTINGS_URL_NAME)
    except NoReverseMatch:
        return None


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Who you are, your tenant, and where to go next."""
    return render(
        request,
        "home.html",
        {"tenant": request.user.tenant, "settings_url": _settings_url()},
    )
