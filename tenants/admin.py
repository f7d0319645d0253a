"""The admin console for tenant owners."""

from django.contrib import admin

site = admin.AdminSite(name="tenant_admin")
