"""A real S3/STS/IAM server (moto, IAM enforcement on) for the export tests."""

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from exports import aws
from exports.settings import export_settings_ensure, export_settings_update

LAUNCHER = Path(__file__).resolve().parent.parent / "s3server.py"
PUT_ONLY = "s3:PutObject"


@dataclass
class S3Server:
    """The running moto server and an admin's view of it."""

    endpoint: str
    bucket: str
    region: str
    account: str
    admin_keys: dict
    exporter_keys: dict
    process: Any

    @classmethod
    def launched(cls, info: dict, process: Any) -> "S3Server":
        """The server described by the launcher's first line of output."""
        return cls(
            endpoint=info["endpoint"],
            bucket=info["bucket"],
            region=info["region"],
            account=info["account"],
            admin_keys=info["admin"],
            exporter_keys=info["exporter"],
            process=process,
        )

    def admin(self, service: str) -> Any:
        """A client signed by the admin user (reads the bucket, creates roles)."""
        return boto3.session.Session(
            aws_access_key_id=self.admin_keys["AccessKeyId"],
            aws_secret_access_key=self.admin_keys["SecretAccessKey"],
            region_name=self.region,
        ).client(service, endpoint_url=self.endpoint)

    def create_role(
        self,
        *,
        external_id: str | None,
        actions: tuple[str, ...] = (PUT_ONLY,),
        prefix: str = "",
        bucket: str | None = None,
    ) -> str:
        """A role trusting our account (with ``external_id`` as condition, if given)."""
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"},
            "Action": "sts:AssumeRole",
        }
        if external_id is not None:
            statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
        name = f"export-{uuid.uuid4().hex[:12]}"
        iam = self.admin("iam")
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [statement]}
            ),
        )["Role"]["Arn"]
        resource = f"arn:aws:s3:::{bucket or self.bucket}/{prefix + '/' if prefix else ''}*"
        iam.put_role_policy(
            RoleName=name,
            PolicyName="export",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": list(actions), "Resource": resource}
                    ],
                }
            ),
        )
        return arn

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``, read back with admin credentials."""
        s3 = self.admin("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for item in page.get("Contents", [])
        ]
        return {k: s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture(scope="session")
def s3_server():
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(LAUNCHER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("the moto server did not start")
    info = json.loads(line)
    server = S3Server.launched(info, process)
    env = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": server.exporter_keys["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": server.exporter_keys["SecretAccessKey"],
        "AWS_DEFAULT_REGION": server.region,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3(s3_server):
    """The server, with the exporter's role-credential cache emptied."""
    aws.forget_credentials()
    yield s3_server
    aws.forget_credentials()


@pytest.fixture
def configure(s3):
    """Enable a tenant's export to the test bucket through a fresh PutObject-only role."""

    def configure(tenant, *, prefix: str | None = None, role_arn: str | None = None, **kw):
        prefix = prefix if prefix is not None else f"t{uuid.uuid4().hex[:8]}"
        config = export_settings_ensure(tenant_id=tenant.pk)
        role_arn = role_arn or s3.create_role(external_id=config.external_id, prefix=prefix)
        return export_settings_update(
            config=config,
            enabled=True,
            bucket=s3.bucket,
            region=s3.region,
            prefix=prefix,
            role_arn=role_arn,
            **kw,
        )

    return configure
