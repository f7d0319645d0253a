"""The one FilterSet: the HTML tab, the API, the admin and the download filter with it."""

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.db.models import Q, QuerySet
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .context import ACTOR_TYPES
from .operations import CATEGORIES, OPERATIONS, TARGET_TYPES

# A time, then a space where an unencoded query string turned the offset's ``+`` into one
# (``…T10:00:00 02:00``); a date and a time separated by a space (``2024-01-31 09:00``) is not.
_UNENCODED_PLUS = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
RANGE_PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGE_CHOICES = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")]
TEXT_LENGTH = 64
# The filters that name who acted. Given together, an entry by any of them matches (they are
# one question, "by whom"); each alone, and with every other filter, narrows as usual.
ACTOR_FILTERS = ("user_id", "api_key_id", "actor_type")
ACTOR_TYPE_CHOICES = [
    ("user", "People, signed in"),
    ("api_key", "People, with an API key"),
    ("system", "System"),
    ("task", "Background tasks"),
    ("anonymous", "Anonymous (e.g. failed sign-ins)"),
]
assert [value for value, _ in ACTOR_TYPE_CHOICES] == list(ACTOR_TYPES)  # noqa: S101


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


class CheckboxList(forms.CheckboxSelectMultiple):
    """Django's checkbox list, its markup built in Python: a template per option (three
    includes each) made rendering these lists the slowest part of the tab."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> str:
        widget = self.get_context(name, value, attrs)["widget"]
        groups = [
            format_html("<div><label>{}</label>{}</div>", group, _options(options))
            if group
            else _options(options)
            for group, options, _ in widget["optgroups"]
        ]
        return format_html('<div id="{}">{}</div>', widget["attrs"]["id"], _joined(groups))


def _options(options: list[dict]) -> str:
    return _joined(
        format_html(
            '<div><label for="{}"><input type="checkbox" name="{}" value="{}"{}> {}</label></div>',
            option["attrs"]["id"],
            option["name"],
            option["value"],
            flatatt(option["attrs"]),
            option["label"],
        )
        for option in options
    )


def _joined(parts: Any) -> str:
    return format_html_join("", "{}", ((part,) for part in parts))


class LenientChoiceField(forms.ChoiceField):
    """A select whose choices are suggestions: any short text is accepted (and may match
    nothing), as the API always took any ``target_type``."""

    default_validators = [MaxLengthValidator(TEXT_LENGTH), ProhibitNullCharactersValidator()]

    def valid_value(self, value: Any) -> bool:
        return True


class TimestampField(forms.Field):
    """An RFC 3339 / ISO 8601 timestamp: ``Z`` or an offset, optional fractional seconds.

    A ``+`` that an unencoded query string turned into a space is read as ``+``; a time
    without an offset is in ``naive_zone`` (UTC for the API, the viewer's zone in the tab).
    The value is the same instant in UTC: Python accepts offsets up to ±23:59, PostgreSQL
    only up to ±15:59 (``+16:00`` would reach the query as a 500).
    """

    naive_zone: tzinfo = UTC

    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        text = _UNENCODED_PLUS.sub(r"\1+\2", str(value).strip())
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                # A wall-clock time that a DST change skips or repeats reads as its first.
                parsed = parsed.replace(tzinfo=self.naive_zone)
            # Years 1 and 9999 with an offset fall outside datetime once converted to UTC.
            return parsed.astimezone(UTC)
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


class TargetTypeFilter(django_filters.Filter):
    """A target type of the catalog, whatever its case: the FilterSet lower-cases the value
    and stored types are lower case, so it is an exact match on ``(tenant, target_type, …)``."""

    field_class = LenientChoiceField


class AuditLogFilterForm(forms.Form):
    """The rules that involve more than one parameter, so that every reader refuses alike.

    Each end of the time range is given once: the start by ``range`` (a preset ending now)
    or ``after``, the end by ``before``. A range that leaves no time at all is an error,
    not an empty list that looks like "nothing happened".
    """

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        after, before, preset = cleaned.get("after"), cleaned.get("before"), cleaned.get("range")
        if preset and self.data.get("after"):
            self.add_error(
                "range",
                ValidationError(
                    "Give range or after, not both: each sets where the time range starts.",
                    code="two_starts",
                ),
            )
        elif preset and before and before <= timezone.now() - RANGE_PRESETS[preset]:
            self.add_error(
                "before",
                ValidationError(
                    "before (%(before)s) is earlier than the start of the %(range)s: "
                    "no entry is in both.",
                    code="empty_range",
                    params={"before": _shown(before), "range": dict(RANGE_CHOICES)[preset].lower()},
                ),
            )
        if after and before and after >= before:
            self.add_error(
                "after",
                ValidationError(
                    "after must be earlier than before: no entry is both after %(after)s "
                    "and before %(before)s.",
                    code="empty_range",
                    params={"after": _shown(after), "before": _shown(before)},
                ),
            )
        return cleaned


def _shown(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


class AuditLogEntryFilterSet(django_filters.FilterSet):
    """Filters of the audit log; every parameter maps to an indexed or tenant-bounded column.

    Every filter narrows the entries (AND), except the actor filters among themselves
    (``ACTOR_FILTERS``: entries by any of the named actors). The time range's start is
    ``range`` or ``after`` (never both), its end ``before`` (``AuditLogFilterForm``).
    ``naive_zone`` is the zone of timestamps written without an offset: UTC by default (the
    API), the viewer's zone in the tab, which shows times in it.
    """

    after = TimestampFilter(field_name="created_at", lookup_expr="gt")
    before = TimestampFilter(field_name="created_at", lookup_expr="lt")
    range = django_filters.ChoiceFilter(
        label="Time range", choices=RANGE_CHOICES, method="filter_range", empty_label="Any time"
    )
    # Lists of checkboxes, not multiple selects: long names wrap instead of being cut off.
    user_id = MultiValueFilter(field_name="user_id", label="Users", coerce=int, widget=CheckboxList)
    api_key_id = MultiValueFilter(
        field_name="api_key_id", label="API keys", coerce=int, widget=CheckboxList
    )
    actor_type = MultiValueFilter(
        field_name="actor_type",
        label="Other actors",
        choices=ACTOR_TYPE_CHOICES,
        widget=CheckboxList,
    )
    operation_name = MultiValueFilter(
        field_name="operation_name",
        label="Operations",
        choices=operation_choices,
        widget=CheckboxList,
    )
    target_type = TargetTypeFilter(
        field_name="target_type",
        label="Target type",
        choices=[("", "Any target type"), *TARGET_TYPES.items()],
    )
    target_id = django_filters.CharFilter(field_name="target_id", max_length=TEXT_LENGTH)
    request_ip = IPAddressFilter(field_name="request_ip", label="IP address")
    request_id = django_filters.CharFilter(field_name="request_id", max_length=TEXT_LENGTH)

    class Meta:
        form = AuditLogFilterForm
        fields: list[str] = []

    def __init__(self, data: Any = None, *args: Any, naive_zone: tzinfo = UTC, **kwargs: Any):
        if data is not None:
            data = data.copy()
            # Rails-style list parameters (``user_id[]=1``) as sent by existing Tines clients.
            for name in ("user_id", "operation_name", "api_key_id", "actor_type"):
                bracketed = data.getlist(f"{name}[]") if hasattr(data, "getlist") else []
                if bracketed:
                    data.setlist(name, data.getlist(name) + bracketed)
            # Any case names the same target type, and the form shows it as chosen.
            if isinstance(data.get("target_type"), str):
                data["target_type"] = data["target_type"].lower()
        self.naive_zone = naive_zone
        super().__init__(data, *args, **kwargs)

    @property
    def form(self) -> forms.Form:
        form = super().form
        for name in ("after", "before"):
            form.fields[name].naive_zone = self.naive_zone
        # A target type the catalog does not name still shows as chosen in the select.
        chosen, field = form["target_type"].value(), form.fields["target_type"]
        if chosen and chosen not in dict(field.choices):
            field.choices = [*field.choices, (chosen, chosen)]
        return form

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        cleaned = self.form.cleaned_data
        actors = {name: cleaned[name] for name in ACTOR_FILTERS if cleaned.get(name)}
        if len(actors) > 1:
            any_of = Q()
            for name, values in actors.items():
                any_of |= Q(**{f"{name}__in": values})
            queryset = queryset.filter(any_of)
        for name, value in cleaned.items():
            if not (len(actors) > 1 and name in actors):
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def filter_range(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(created_at__gte=timezone.now() - RANGE_PRESETS[value]) if value else qs
