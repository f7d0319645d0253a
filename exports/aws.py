"""STS and S3 for the exporter: assume the tenant's role, put objects, explain AWS errors.

Boto3 is always created through the standard credential chain and honours
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_STS``. The exporter only
ever calls ``s3:PutObject`` with the assumed role: it never lists, reads or heads a bucket.
"""

import base64
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

SESSION_NAME = "audit-log-export"
# Cached role credentials are dropped this long before they expire.
CREDENTIAL_MARGIN = timedelta(minutes=5)
ROLE_SESSION_SECONDS = 3600
BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 2, "mode": "standard"},
)

_cache: dict[tuple[str, str, str], dict[str, Any]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class AwsError(Exception):
    """A failed AWS step: which step, AWS's error code and what it means in plain words."""

    step: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}: {self.message} ({self.code})"


STEP_WORDS = {
    "assume_role": "assuming the role with the External ID",
    "assume_role_without_external_id": "assuming the role without the External ID",
    "put_object": "writing to the bucket",
}

_S3_WORDS = {
    "AccessDenied": "the role does not allow s3:PutObject on this bucket and prefix",
    "AllAccessDisabled": "access to this bucket is disabled",
    "NoSuchBucket": "the bucket does not exist",
    "PermanentRedirect": "the bucket is in another region than the one configured",
    "AuthorizationHeaderMalformed": "the bucket is in another region than the one configured",
    "IllegalLocationConstraintException": "the bucket is in another region than configured",
    "InvalidAccessKeyId": "the assumed role's credentials were not accepted by S3",
    "ExpiredToken": "the assumed role's credentials expired",
    "SlowDown": "S3 is throttling requests (SlowDown); the export will retry",
    "Throttling": "AWS is throttling requests; the export will retry",
    "InternalError": "S3 had an internal error; the export will retry",
    "ServiceUnavailable": "S3 is unavailable; the export will retry",
    "BadDigest": "the object was corrupted in transit (checksum mismatch); it will be resent",
    "InvalidRequest": "S3 refused the request as invalid",
}
_STS_WORDS = {
    "AccessDenied": "our AWS account is not allowed to assume this role with this External ID:"
    " check the role's trust policy (principal and sts:ExternalId condition)",
    "InvalidClientTokenId": "our own AWS credentials were rejected by STS",
    "SignatureDoesNotMatch": "our own AWS credentials were rejected by STS",
    "NoSuchEntity": "the role does not exist",
    "ValidationError": "the role ARN or External ID was rejected as invalid",
    "RegionDisabledException": "STS is not enabled in this region for the role's account",
    "Throttling": "AWS is throttling requests; the export will retry",
}


def explain(exc: Exception, step: str) -> AwsError:
    """An ``AwsError`` naming the step and the AWS error code, in plain words."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, NoCredentialsError):
        return AwsError(step, "NoCredentials", "the server has no AWS credentials configured")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(
            error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        words = (_STS_WORDS if step.startswith("assume") else _S3_WORDS).get(code)
        if words is None:
            if status >= 500:
                words = "AWS had a server error; the export will retry"
            else:
                words = error.get("Message") or "AWS refused the request"
        return AwsError(step, code, words)
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        if "Timeout" in name:
            return AwsError(step, name, "AWS did not answer in time; the export will retry")
        if "Connect" in name or "Endpoint" in name:
            return AwsError(step, name, "could not connect to AWS; the export will retry")
        return AwsError(step, name, str(exc))
    return AwsError(step, type(exc).__name__, str(exc))


def session() -> boto3.session.Session:
    """A boto3 session on the standard credential chain (env, profile, instance role)."""
    return boto3.session.Session()


def assume_role(
    *,
    role_arn: str,
    external_id: str | None,
    region: str,
    boto_session: boto3.session.Session | None = None,
    cached: bool = True,
) -> dict[str, Any]:
    """Temporary credentials of the tenant's role (cached until shortly before expiry)."""
    key = (role_arn, external_id or "", region)
    if cached:
        with _cache_lock:
            hit = _cache.get(key)
        if hit and hit["Expiration"] - CREDENTIAL_MARGIN > datetime.now(UTC):
            return hit
    step = "assume_role" if external_id else "assume_role_without_external_id"
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": SESSION_NAME,
        "DurationSeconds": ROLE_SESSION_SECONDS,
    }
    if external_id:
        params["ExternalId"] = external_id
    try:
        sts = (boto_session or session()).client("sts", region_name=region, config=BOTO_CONFIG)
        credentials = sts.assume_role(**params)["Credentials"]
    except Exception as exc:
        raise explain(exc, step) from exc
    if cached:
        with _cache_lock:
            _cache[key] = credentials
    return credentials


def forget_credentials(role_arn: str | None = None) -> None:
    """Drop cached role credentials (all, or one role's), e.g. after an AccessDenied."""
    with _cache_lock:
        for key in [k for k in _cache if role_arn is None or k[0] == role_arn]:
            del _cache[key]


def s3_client(
    credentials: dict[str, Any], region: str, boto_session: boto3.session.Session | None = None
) -> Any:
    """An S3 client acting as the assumed role."""
    return (boto_session or session()).client(
        "s3",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=BOTO_CONFIG,
    )


def put_once(
    client: Any, *, bucket: str, key: str, body: bytes, sha256_hex: str, content_type: str
) -> bool:
    """PutObject with ``If-None-Match: *``; ``False`` when the object already exists (412).

    An existing object means an earlier attempt was accepted and its acknowledgement lost:
    the key is deterministic and the bytes frozen, so that counts as delivered.
    """
    checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            IfNoneMatch="*",
            ChecksumSHA256=checksum,
            ContentType=content_type,
        )
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        if status == 412 or code == "PreconditionFailed":
            return False
        raise explain(exc, "put_object") from exc
    except Exception as exc:
        raise explain(exc, "put_object") from exc
    return True
