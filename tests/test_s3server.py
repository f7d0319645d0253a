"""The S3/STS stand-in's launcher (scripts/s3server.py): IAM enforced, objects kept in --state."""

import json

import pytest
from botocore.exceptions import ClientError

from scripts import s3server

from .s3 import launch


def stop(server) -> None:
    server.process.terminate()
    assert server.process.wait(timeout=10) == 0


def test_objects_outlive_the_server_with_state_and_iam_holds(tmp_path):
    info_file = tmp_path / "info.json"
    first = launch("--state", str(tmp_path / "s3"), "--info", str(info_file), "--bucket", "demo")
    assert json.loads(info_file.read_text()) == first.info
    assert info_file.stat().st_mode & 0o077 == 0  # keys: readable by their owner only
    first.admin("s3").put_object(Bucket="demo", Key="a/b.json", Body=b"kept")
    reader = s3server.client(first.info, "s3", "reader")
    with pytest.raises(ClientError, match="AccessDenied"):
        reader.put_object(Bucket="demo", Key="a/c.json", Body=b"refused")
    stop(first)
    assert not info_file.exists()
    assert (tmp_path / "s3" / "demo" / "a" / "b.json").read_bytes() == b"kept"

    second = launch("--state", str(tmp_path / "s3"), "--bucket", "demo")
    try:
        reader = s3server.client(second.info, "s3", "reader")
        assert reader.get_object(Bucket="demo", Key="a/b.json")["Body"].read() == b"kept"
        assert [o["Key"] for o in reader.list_objects_v2(Bucket="demo")["Contents"]] == ["a/b.json"]
    finally:
        stop(second)
