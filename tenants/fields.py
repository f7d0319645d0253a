"""A text field encrypted at rest: the database only ever holds Fernet tokens."""

from functools import cache
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(key: str) -> Fernet:
    if not key:
        raise ImproperlyConfigured("CREDENTIAL_ENCRYPTION_KEY is not set")
    return Fernet(key)


class EncryptedTextField(models.TextField):
    """Holds plaintext in Python and a Fernet token in the database."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return _fernet(settings.CREDENTIAL_ENCRYPTION_KEY).encrypt(value.encode()).decode()

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return _fernet(settings.CREDENTIAL_ENCRYPTION_KEY).decrypt(value.encode()).decode()
