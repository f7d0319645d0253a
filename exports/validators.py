"""Field rules of the export settings (AWS's naming rules), shared by the API and the form."""

import ipaddress
import re

from django.core.exceptions import ValidationError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")


def validate_bucket(value: str) -> None:
    """S3 general purpose bucket naming rules."""
    if not _BUCKET.match(value):
        raise ValidationError(
            "Bucket names are 3-63 characters: lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit."
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValidationError("Bucket names cannot contain '..', '.-' or '-.'.")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValidationError("Bucket names cannot look like an IP address.")
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(
        ("-s3alias", "--ol-s3", "--x-s3", ".mrap")
    ):
        raise ValidationError("This bucket name uses a prefix or suffix reserved by AWS.")


def validate_region(value: str) -> None:
    """An AWS region code such as ``eu-west-1``."""
    if not _REGION.match(value):
        raise ValidationError("Enter an AWS region code, e.g. us-east-1 or eu-west-1.")


def validate_role_arn(value: str) -> None:
    """An IAM role ARN: ``arn:aws:iam::<12-digit account>:role/<name>``."""
    if not _ROLE_ARN.match(value):
        raise ValidationError(
            "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/audit-log-export."
        )


def validate_prefix(value: str) -> None:
    """A key prefix of safe characters, without empty or relative segments."""
    if not _PREFIX.match(value):
        raise ValidationError("Use letters, digits and ! - _ . * ' ( ) / only in the prefix.")
    if value.startswith("/") or "//" in value:
        raise ValidationError("The prefix cannot start with '/' or contain '//'.")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValidationError("The prefix cannot contain '.' or '..' segments.")
