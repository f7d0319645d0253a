"""Export of each tenant's audit log entries to its own S3 bucket, every 15 minutes.

Where is what (one concern per module; open this file, then the one named here):

- ``settings``: the tenant's configuration (ensure, update, regenerate the External ID, the
  unsaved draft a form holds), the confused-deputy check that enabling must pass, the trust
  and permission policies shown
- ``connection``: the connection test (assume the role with and without the External ID,
  write a test object), each step reported with AWS's error code
- ``delivery``: the run (``export_run``): lease, cutoff, frozen batches, gzip NDJSON, upload
  with ``If-None-Match: *``, re-sending what was not delivered; its docstring says why no
  entry is ever skipped or sent twice
- ``manifests``: what a run's manifest lists (``freeze``), its Ed25519 signature and chain
- ``layout``: every object key the export writes in the bucket
- ``aws``: STS and S3 calls, the role-credential cache, AWS errors in plain words
- ``selectors``: reads: a tenant's settings, enabled tenants, entry lines (built by
  PostgreSQL), the status and backlog shown on the page
- ``exceptions``: why a run stopped (``ExportError``, ``LeaseLost``) or Export now was refused
- ``models``: ``ExportSettings`` (audited), ``ExportState`` (lease, last run),
  ``ExportStream`` (one destination's position and chains), ``ExportBatch``, ``ExportManifest``
- ``tasks``: beat queues one ``export_tenant`` per enabled tenant; failures retry with backoff;
  ``export_now`` queues one for a tenant at once (the page's Export now)
- ``apis``, ``views``, ``serializers``, ``forms``, ``validators``, ``permissions``: the
  settings API and page (owners; the page is a read-only status for readers of the audit
  log) and their field rules
- ``verification`` and ``management/commands``: ``run_audit_export`` (the beat task's path,
  once) and ``verify_audit_export`` (the tenant-side check of a bucket)
"""
