"""The local S3/STS stand-in (``scripts/s3server.py``, moto with IAM enforcement) for tests.

A pytest plugin (``tests/conftest.py`` names it): ``s3_server`` launches one stand-in for the
session and points boto3 at it as the exporter's base identity; ``s3`` is that server with
the exporter's role-credential cache emptied; ``configure`` enables a tenant's export to it.
"""

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exports import aws
from exports.settings import export_settings_ensure, export_settings_update
from scripts import s3server

LAUNCHER = Path(s3server.__file__)
PUT_ONLY = "s3:PutObject"


@dataclass
class S3Server:
    """The running stand-in (as its launcher's JSON line describes it), seen by its admin."""

    info: dict
    process: Any

    @property
    def endpoint(self) -> str:
        return self.info["endpoint"]

    @property
    def bucket(self) -> str:
        return self.info["bucket"]

    @property
    def region(self) -> str:
        return self.info["region"]

    @property
    def account(self) -> str:
        return self.info["account"]

    def admin(self, service: str) -> Any:
        """A client signed by the admin user (reads the bucket, creates roles)."""
        return s3server.client(self.info, service)

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
        resource = f"arn:aws:s3:::{bucket or self.bucket}/{prefix + '/' if prefix else ''}*"
        return s3server.put_role(
            self.admin("iam"),
            name=f"export-{uuid.uuid4().hex[:12]}",
            trust_policy={"Version": "2012-10-17", "Statement": [statement]},
            permission_policy={
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}],
            },
        )

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


def launch(*args: str) -> S3Server:
    """Start the launcher and wait for its JSON line."""
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(LAUNCHER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("the moto server did not start")
    return S3Server(info=json.loads(line), process=process)


@pytest.fixture(scope="session")
def s3_server():
    server = launch()
    env = s3server.exporter_environment(server.info)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.process.terminate()
    server.process.wait(timeout=10)


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
