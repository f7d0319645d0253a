"""Routes of the export settings page."""

urlpatterns: list = []
