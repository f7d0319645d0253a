"""A local stand-in for S3 and STS that enforces IAM: moto's server on loopback.

    python scripts/s3server.py [--port N] [--bucket NAME] [--info FILE] [--state DIR]

The one launcher of the stand-in: ``scripts/run`` starts it as the local run's export
destination, the tests (``tests/s3.py``) and ``bench/export_throughput.py`` start it for
theirs. It is never part of a deployment: moto comes from requirements-local.txt, which only
``scripts/run`` and the dev requirements install, and no settings module names its endpoint
(the processes that use it get ``AWS_ENDPOINT_URL`` and the exporter's keys from their
environment).

Once it is ready it prints one JSON line (also written to ``--info``, readable by its owner
only): the endpoint, bucket, region, account and the access keys of three users, ``admin``
(everything), ``exporter`` (only ``sts:AssumeRole``: the application's base identity) and
``reader`` (``s3:ListBucket`` and ``s3:GetObject`` on the bucket: what a tenant running
``verify_audit_export`` needs). Then it serves until SIGTERM or SIGINT. Users, keys and the
bucket are made before IAM enforcement is switched on; afterwards every request must be
signed by a known key and allowed by policy.

With ``--state DIR`` the bucket's objects outlive the process (the local database does):
restored from DIR at start, copied there as they arrive and on exit. The exporter writes
each key once, so a copy by key is exact.

Two fidelity fixes to moto 5.x, so that the confused-deputy check is tested for real:

* a trust-policy condition on a key the request does not carry (``AssumeRole`` without an
  ``ExternalId``) counts as satisfied in moto; in AWS ``StringEquals`` on a missing key is
  false. ``TrustCondition.verify_condition`` is corrected below.
* moto compares a trust policy's principal literally, so the account principal
  ``arn:aws:iam::<account>:root`` would match no user; in AWS it delegates to every
  principal of that account. ``IAMPolicyStatement._check_principal`` is corrected below.
"""

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

BUCKET = "audit-export-test"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# How often objects that arrived are copied to --state.
SAVE_SECONDS = 1.0


def patch_moto() -> None:
    """Make moto's trust-policy evaluation behave like AWS (see the module docstring)."""
    from moto.iam import access_control, policy_conditions

    original_verify = policy_conditions.TrustCondition.verify_condition

    def verify_condition(self: Any, actual_values: list[str]) -> bool:
        supported = self._condition in policy_conditions.CONDITION_OPERATIONS
        if supported and len(actual_values) < len(self.context_keys):
            return False  # a key the request does not carry never equals anything
        return original_verify(self, actual_values)

    policy_conditions.TrustCondition.verify_condition = verify_condition

    original_principal = access_control.IAMPolicyStatement._check_principal

    def check_principal(self: Any, principal: str) -> bool:
        if original_principal(self, principal):
            return True
        expected = (self._statement.get("Principal") or {}).get("AWS")
        expected = [expected] if isinstance(expected, str) else (expected or [])
        account = principal.split(":")[4] if principal.count(":") >= 5 else None
        return any(e in (account, f"arn:aws:iam::{account}:root") for e in expected)

    access_control.IAMPolicyStatement._check_principal = check_principal


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def bootstrap(endpoint: str, bucket: str) -> dict[str, Any]:
    """Users (admin, exporter, reader) with keys, and the bucket; before enforcement is on."""
    import boto3

    # Before enforcement moto takes any key; these are no secret.
    session = boto3.session.Session(
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # noqa: S106
        region_name=REGION,
    )
    iam = session.client("iam", endpoint_url=endpoint)
    keys = {}
    policies = {
        "admin": {"Effect": "Allow", "Action": "*", "Resource": "*"},
        # The app's base identity: it can only assume roles (the tenants' trust decides).
        "exporter": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
        # The tenant checking its bucket (verify_audit_export): list and read, nothing else.
        "reader": {
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        },
    }
    for name, statement in policies.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName=f"{name}-policy", PolicyDocument=_policy(statement)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return keys


def client(info: dict[str, Any], service: str, user: str = "admin") -> Any:
    """A client of the running stand-in, signed by one of its users."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=info[user]["AccessKeyId"],
        aws_secret_access_key=info[user]["SecretAccessKey"],
        region_name=info["region"],
    ).client(service, endpoint_url=info["endpoint"])


def put_role(iam: Any, *, name: str, trust_policy: dict, permission_policy: dict) -> str:
    """Create (or redefine) role ``name`` with these policies; its ARN."""
    trust = json.dumps(trust_policy)
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName="export", PolicyDocument=json.dumps(permission_policy)
    )
    return arn


def exporter_environment(info: dict[str, Any]) -> dict[str, str]:
    """The environment under which the exporter's boto3 talks to the stand-in as ``exporter``."""
    return {
        "AWS_ENDPOINT_URL": info["endpoint"],
        "AWS_ACCESS_KEY_ID": info["exporter"]["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": info["exporter"]["SecretAccessKey"],
        "AWS_DEFAULT_REGION": info["region"],
    }


class ObjectStore:
    """The bucket's objects as files under ``state/<bucket>/<key>`` (see the module docstring)."""

    def __init__(self, state: Path, bucket: str) -> None:
        self.root = (state / bucket).resolve()
        self.saved: set[str] = set()

    def _path(self, key: str) -> Path | None:
        path = (self.root / key).resolve()
        return path if path.is_relative_to(self.root) and not key.endswith("/") else None

    def restore(self, s3: Any, bucket: str) -> None:
        """Put every saved object back in the bucket."""
        if not self.root.is_dir():
            return
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            key = path.relative_to(self.root).as_posix()
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            self.saved.add(key)

    def save_new(self, s3: Any, bucket: str) -> None:
        """Copy the objects not saved yet."""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key = item["Key"]
                path = self._path(key)
                if key in self.saved or path is None:
                    continue
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".partial")
                partial.write_bytes(body)
                partial.replace(path)
                self.saved.add(key)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once, readable by its owner only (it holds keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)
    partial.write_text(text)
    partial.replace(path)


def main() -> None:
    """Start, bootstrap, switch IAM enforcement on, say where it is, serve until signalled."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--bucket", default=BUCKET)
    parser.add_argument("--info", type=Path, help="also write the JSON line to this file")
    parser.add_argument("--state", type=Path, help="keep the bucket's objects in this folder")
    args = parser.parse_args()

    from moto import settings as moto_settings
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    # One line per request (the copy to --state lists the bucket every second) is noise.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    patch_moto()
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    keys = bootstrap(endpoint, args.bucket)
    info = {
        "endpoint": endpoint,
        "bucket": args.bucket,
        "region": REGION,
        "account": ACCOUNT_ID,
        **keys,
    }
    store = ObjectStore(args.state, args.bucket) if args.state else None
    if store:
        store.restore(client(info, "s3"), args.bucket)
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    line = json.dumps(info)
    if args.info:
        write_private(args.info, line + "\n")
    print(line, flush=True)

    s3 = client(info, "s3") if store else None
    while not stop.wait(SAVE_SECONDS):
        if store:
            store.save_new(s3, args.bucket)
    if store:
        store.save_new(s3, args.bucket)
    server.stop()
    if args.info:
        args.info.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
