"""Give every tenant of the local run a destination in the S3/STS stand-in; say what to paste.

    python scripts/local_export.py INFO_JSON [--env FILE]

``scripts/run`` runs this once the stand-in (``scripts/s3server.py``) is up. For each tenant
it creates, in the stand-in, the role the export settings page asks a tenant to create, made
from the page's own policies: a trust policy that requires the tenant's External ID, and a
permission policy that allows ``s3:PutObject`` under the tenant's prefix and nothing else.
Then it prints what the tenant's owner pastes on the page and how to check the bucket
afterwards; ``--env`` writes the environment under which the dev server and the Celery
worker reach the stand-in as the exporter. It never saves a tenant's export settings (only
creates them with their defaults, as opening the page does): saving is the owner's to do.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROLE_NAME = "audit-log-export-tenant-{}"


def destinations(info: dict[str, Any]) -> list[dict[str, Any]]:
    """A role per tenant in the stand-in, and the values to paste for it."""
    from django.utils.text import slugify

    from exports.settings import (
        export_settings_draft,
        export_settings_ensure,
        permission_policy,
        trust_policy,
    )
    from scripts import s3server
    from tenants.models import Tenant

    iam = s3server.client(info, "iam")
    found = []
    for tenant in Tenant.objects.order_by("pk"):
        paste = {
            "bucket": info["bucket"],
            "region": info["region"],
            "prefix": slugify(tenant.name)[:60] or f"tenant-{tenant.pk}",
        }
        config = export_settings_ensure(tenant_id=tenant.pk)
        shown = export_settings_draft(config=config, **paste)
        paste["role_arn"] = s3server.put_role(
            iam,
            name=ROLE_NAME.format(tenant.pk),
            trust_policy=trust_policy(shown),
            permission_policy=permission_policy(shown),
        )
        found.append({"tenant_id": tenant.pk, "name": tenant.name, **paste})
    return found


def instructions(info: dict[str, Any], found: list[dict[str, Any]]) -> str:
    """What to paste, per tenant, and the command that checks a tenant's bucket."""
    reader = info["reader"]
    lines = [
        "  Export to S3 works locally. Sign in as a tenant's owner, open Settings → Audit logs →",
        '  Export settings, paste these, tick "Export to S3 every 15 minutes" and Save; then',
        "  Test connection and Export now:",
    ]
    for tenant in found:
        lines += [
            "",
            f"    {tenant['name']} (tenant {tenant['tenant_id']})",
            f"      Bucket     {tenant['bucket']}",
            f"      Region     {tenant['region']}",
            f"      Prefix     {tenant['prefix']}",
            f"      Role ARN   {tenant['role_arn']}",
        ]
    if found:
        first = found[0]
        lines += [
            "",
            "  Check a tenant's bucket as the tenant would (the stand-in's read-only keys):",
            f"    AWS_ENDPOINT_URL={info['endpoint']} AWS_ACCESS_KEY_ID={reader['AccessKeyId']}"
            f" AWS_SECRET_ACCESS_KEY={reader['SecretAccessKey']} \\",
            f"      .venv/bin/python manage.py verify_audit_export --bucket {first['bucket']}"
            f" --region {first['region']} --prefix {first['prefix']} --tenant {first['tenant_id']}",
        ]
    lines += [
        "",
        "  (After Regenerate External ID, restart scripts/run: the local roles then trust the",
        "  new ID, as a tenant would update its role's trust policy.)",
    ]
    return "\n".join(lines)


def main() -> None:
    """Create the roles, print the instructions, write the exporter's environment."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("info", type=Path, help="the stand-in's --info file")
    parser.add_argument("--env", type=Path, help="write the exporter's environment here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.local")
    import django

    django.setup()
    from scripts import s3server

    info = json.loads(args.info.read_text())
    print(instructions(info, destinations(info)))
    if args.env:
        environment = s3server.exporter_environment(info)
        s3server.write_private(
            args.env, "".join(f"{k}={shlex.quote(v)}\n" for k, v in environment.items())
        )


if __name__ == "__main__":
    main()
