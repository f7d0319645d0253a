"""Routes of the Settings → Audit logs pages (``/settings/...``)."""

urlpatterns: list = []
