"""The project's admin site: Django's, with the overview (config.admin_overview) as the first
panel of its index page, and the off-policy evaluation page at outcomes/offline/. Installed
in place of `django.contrib.admin` through AttuneAdminConfig, so `admin.site` and every
`@admin.register` use it."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse


class AttuneAdminSite(admin.AdminSite):
    site_header = "Attune administration"
    site_title = "Attune"
    index_title = "Personalization and experiments"
    # The index lists the apps; without the sidebar a changelist has the page's width.
    enable_nav_sidebar = False

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from config.admin_overview import admin_overview

        context = {"overview": admin_overview(), **(extra_context or {})}
        response: TemplateResponse = super().index(request, extra_context=context)
        return response

    def get_urls(self) -> list[Any]:
        from django.urls import path

        from outcomes.admin_offline import offline_view

        # Staff pages beside the models': the off-policy evaluation (DESIGN.md §5.6).
        pages = [
            path("outcomes/offline/", self.admin_view(offline_view), name="outcomes_offline"),
        ]
        return pages + super().get_urls()


class AttuneAdminConfig(AdminConfig):
    default_site = "config.admin_site.AttuneAdminSite"
