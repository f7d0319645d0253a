"""The one FilterSet: the HTML tab, the API, the admin and the download filter with it."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from .operations import CATEGORIES, OPERATIONS

_UNENCODED_PLUS = re.compile(r" (\d{2}:?\d{2})$")
RANGE_PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class LenientMultipleChoiceField(forms.MultipleChoiceField):
    """Choices are suggestions for the form: any value of the right type is accepted.

    An unknown operation name or user id simply matches nothing, as clients expect.
    """

    def __init__(self, *args: Any, coerce: type = str, **kwargs: Any) -> None:
        self.coerce = coerce
        super().__init__(*args, **kwargs)

    def valid_value(self, value: Any) -> bool:
        return True

    def clean(self, value: Any) -> list:
        values = super().clean(value)
        try:
            # PostgreSQL refuses NUL in text: refuse it here rather than with a 500.
            if any("\x00" in str(v) for v in values):
                raise ValueError
            coerced = [self.coerce(v) for v in values]
            # An id past 64 bits would overflow the database driver (a 500 on SQLite).
            if self.coerce is int and any(abs(v) >= 2**63 for v in coerced):
                raise ValueError
            return coerced
        except (TypeError, ValueError):
            raise ValidationError(
                f"Enter {'whole numbers' if self.coerce is int else 'valid values'}.",
                code="invalid",
            ) from None


class MultiValueFilter(django_filters.Filter):
    """``name=1``, ``name=1&name=2`` and ``name[]=1&name[]=2`` all filter by ``IN``."""

    field_class = LenientMultipleChoiceField

    def filter(self, qs: QuerySet, value: list) -> QuerySet:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class TimestampField(forms.Field):
    """An RFC 3339 / ISO 8601 timestamp: ``Z`` or an offset, optional fractional seconds.

    A ``+`` that an unencoded query string turned into a space is read as ``+``; a time
    without an offset is UTC. The value is the same instant in UTC: Python accepts offsets
    up to ±23:59, PostgreSQL only up to ±15:59 (``+16:00`` would reach the query as a 500).
    """

    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        text = _UNENCODED_PLUS.sub(r"+\1", str(value).strip())
        try:
            parsed = datetime.fromisoformat(text)
            # Years 1 and 9999 with an offset fall outside datetime once converted to UTC.
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValidationError(
                "Enter an RFC 3339 timestamp, e.g. 2024-01-31T23:59:59Z.", code="invalid"
            ) from None


class TimestampFilter(django_filters.Filter):
    """Filters ``created_at`` by an RFC 3339 timestamp."""

    field_class = TimestampField


class IPAddressFilter(django_filters.Filter):
    """An exact IP address (validated, so the database never sees a malformed one)."""

    field_class = forms.GenericIPAddressField


def operation_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Operations grouped by catalog category, for a grouped select."""
    return [
        (
            category,
            [(op.name, op.description) for op in OPERATIONS.values() if op.category == category],
        )
        for category in CATEGORIES
    ]


class AuditLogEntryFilterSet(django_filters.FilterSet):
    """Filters of the audit log; every parameter maps to an indexed or tenant-bounded column."""

    after = TimestampFilter(field_name="created_at", lookup_expr="gt")
    before = TimestampFilter(field_name="created_at", lookup_expr="lt")
    range = django_filters.ChoiceFilter(
        label="Time range",
        choices=[("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")],
        method="filter_range",
        empty_label="Any time",
    )
    user_id = MultiValueFilter(field_name="user_id", label="Users", coerce=int)
    operation_name = MultiValueFilter(
        field_name="operation_name", label="Operations", choices=operation_choices
    )
    target_type = django_filters.CharFilter(field_name="target_type", max_length=64)
    target_id = django_filters.CharFilter(field_name="target_id", max_length=64)
    request_ip = IPAddressFilter(field_name="request_ip", label="IP address")
    request_id = django_filters.CharFilter(field_name="request_id", max_length=64)

    class Meta:
        fields: list[str] = []

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None:
            data = data.copy()
            # Rails-style list parameters (``user_id[]=1``) as sent by existing Tines clients.
            for name in ("user_id", "operation_name"):
                bracketed = data.getlist(f"{name}[]") if hasattr(data, "getlist") else []
                if bracketed:
                    data.setlist(name, data.getlist(name) + bracketed)
        super().__init__(data, *args, **kwargs)

    def filter_range(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(created_at__gte=timezone.now() - RANGE_PRESETS[value]) if value else qs
