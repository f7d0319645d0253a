"""Launch moto's standalone S3/STS/IAM server on loopback, with IAM enforcement on.

    python tests/s3server.py [--port N]

Prints one JSON line (endpoint, admin and exporter access keys, bucket) once it is ready,
then serves until killed. Bootstrap (users, keys, the bucket) happens before enforcement is
switched on; afterwards every request must be signed by a known key and allowed by policy.

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
import socket
import sys
import threading
from typing import Any

BUCKET = "audit-export-test"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


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


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bootstrap(endpoint: str) -> dict[str, Any]:
    """Users (admin, exporter) with keys, and the bucket; run before enforcement is on."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=REGION
    )
    iam = session.client("iam", endpoint_url=endpoint)
    keys = {}
    policies = {
        "admin": {"Effect": "Allow", "Action": "*", "Resource": "*"},
        # The app's base identity: it can only assume roles (the tenants' trust decides).
        "exporter": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
    }
    for name, statement in policies.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName=f"{name}-policy",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    return keys


def main() -> None:
    """Start, bootstrap, switch IAM enforcement on, print the JSON line, serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    from moto import settings as moto_settings
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    patch_moto()
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    port = args.port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    keys = bootstrap(endpoint)
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "bucket": BUCKET,
                "region": REGION,
                "account": ACCOUNT_ID,
                **keys,
            }
        ),
        flush=True,
    )
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
