"""Brute-force protection of the sign-in pages, ``/login/`` and ``/admin/login/``; and the
domain API's rate limit (``DomainApiThrottle``, at the end).

Failed sign-ins are counted per account (the email tried, whether or not an account has
it, so the answer never tells) and per client IP, with the GCRA limit of the API rate limits
(``auditlog.throttling``) in the default cache, the whole budget allowed at once: no more
than the limit of failures in any window of the period, wherever it starts (after a lockout,
one more try per period). What holds:

- An attempt is counted *before* its password is checked (atomically), and given back if
  the password was right: concurrent attempts cannot all slip in under the limit, so no more
  than the limit of passwords are checked in any period.
- An attempt past a limit is refused before its password is checked and is not counted (a
  refusal in the other scope gives this scope's count back): the right password is refused
  too, and nothing is recorded (``LoginFailure`` comes from Django's ``user_login_failed``,
  which only a password check sends).
- The failure whose count left nothing of a budget is the one that records the lockout:
  a ``LoginLockout`` entry when an account has the email, and always one
  ``sign_in_<scope>_lockout`` line in the structured log (``sign_in_lockout_recorded``, also
  the metrics' hook): one of each per lockout, however many attempts it refuses and however
  many workers answer them.
- A right password clears its account's count; at its address it only takes back its own
  attempt, never earlier failures: signing in to one's own account must not renew an
  attacker's budget for everyone else's.

The sign-in forms drive a ``SignInThrottle`` (they hold the password check);
``refuse_locked_out`` turns a form's refusal into 429 with ``Retry-After``, whichever view
rendered it.
"""

import logging
import math
from typing import Any

from django.conf import settings
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

from auditlog.context import client_ip
from auditlog.services import record_for_email
from auditlog.throttling import ApiKeyRateThrottle, Gcra, Hit

ACCOUNT = "account"
IP = "ip"

security_log = logging.getLogger("audit_project.security")

# Sent once per lockout, with kind ("account" or "ip"), client_ip, account_key, retry_after.
sign_in_locked_out = Signal()


def sign_in_lockout_recorded(
    *, kind: str, client_ip: str, account_key: str, retry_after: int
) -> None:
    """Log a lockout as event ``sign_in_<kind>_lockout`` and tell ``sign_in_locked_out``.

    The email appears only as its keyed hash (the cache key's): it may be a password typed
    in the wrong box.
    """
    event = f"sign_in_{kind}_lockout"
    fields = {"client_ip": client_ip, "account_key": account_key, "retry_after": retry_after}
    security_log.warning(
        "%s client_ip=%s account_key=%s retry_after=%s",
        event,
        client_ip,
        account_key,
        retry_after,
        extra={"event": event, "event_fields": fields},
    )
    sign_in_locked_out.send(sender=SignInThrottle, kind=kind, **fields)


class SignInThrottle:
    """One sign-in attempt against the limits: ``admit``, then the password's verdict."""

    def __init__(self, request: HttpRequest, email: str) -> None:
        self.email = email.strip().lower()
        self.identities = {
            # Keyed, so the cache holds no list of the emails people tried.
            ACCOUNT: salted_hmac("tenants.throttling", self.email).hexdigest(),
            IP: client_ip(request) or "unknown",
        }
        self.counters = {
            ACCOUNT: Gcra.for_rate(
                "signin-failures-account", settings.SIGN_IN_FAILURES_PER_ACCOUNT
            ),
            IP: Gcra.for_rate("signin-failures-ip", settings.SIGN_IN_FAILURES_PER_IP),
        }
        self.counts: dict[str, Hit] = {}

    def admit(self) -> int:
        """Count the attempt before its password is checked; the seconds it must wait instead
        (0: go ahead and check it)."""
        self.counts = {scope: c.hit(self.identities[scope]) for scope, c in self.counters.items()}
        over = [hit.retry_after for hit in self.counts.values() if not hit.allowed]
        if over:
            # Locked out, or concurrent attempts took the last tries: refused, and uncounted.
            self._give_back()
            return max(over)
        return 0

    def password_failed(self) -> int:
        """Record the lockout this failure causes, if any; the seconds it lasts (0: none)."""
        waits = []
        for scope, hit in self.counts.items():
            if hit.remaining == 0:
                inputs = {
                    "email": self.email,
                    "scope": scope,
                    "failures": self.counters[scope].limit,
                    "retryAfterSeconds": hit.retry_after,
                }
                # Logged first: an entry that cannot be written fails the request, not the log.
                sign_in_lockout_recorded(
                    kind=scope,
                    client_ip=self.identities[IP],
                    account_key=self.identities[ACCOUNT],
                    retry_after=hit.retry_after,
                )
                record_for_email(
                    operation_name="LoginLockout", email=self.email, inputs={"inputs": inputs}
                )
                waits.append(hit.retry_after)
        return max(waits, default=0)

    def password_passed(self) -> None:
        """The account's owner knows its password: its failures no longer count."""
        self.counters[ACCOUNT].clear(self.counts[ACCOUNT])
        self._give_back(scopes=(IP,))

    def _give_back(self, scopes: tuple[str, ...] = (ACCOUNT, IP)) -> None:
        for scope in scopes:
            self.counters[scope].give_back(self.counts[scope])


def locked_out_message(seconds: int) -> str:
    """The refusal shown on the form, the same whether or not the account exists."""
    if seconds < 60:
        wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = math.ceil(seconds / 60)
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed sign-in attempts. Try again in {wait}."


def refuse_locked_out(response: HttpResponse) -> HttpResponse:
    """A sign-in page whose form refused a locked-out attempt answers 429 + ``Retry-After``."""
    context: Any = getattr(response, "context_data", None) or {}
    seconds = getattr(context.get("form"), "locked_for", 0)
    if seconds:
        response.status_code = 429
        response["Retry-After"] = str(seconds)
    return response


class DomainApiThrottle(ApiKeyRateThrottle):
    """The domain API's budget, ``DOMAIN_API_RATE``, per API key (or session user).

    DRF's default throttle: it also limits every endpoint that names none of its own (export
    settings, the schema). The audit log API keeps its own budget.
    """

    rate_setting = "DOMAIN_API_RATE"
    counter_name = "domain-api-rate"
