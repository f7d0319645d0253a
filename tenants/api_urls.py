"""Routes of the domain REST API (``/api/v1/...``)."""

urlpatterns: list = []
