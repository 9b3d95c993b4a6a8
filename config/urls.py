from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health
from config.api.errors import error_response, is_api_request
from config.api.index import ApiIndexView
from config.api.views import api_not_found

admin.site.site_header = "Attune administration"
admin.site.site_title = "Attune"
admin.site.index_title = "Personalization and experiments"


class SchemaView(SpectacularAPIView):
    renderer_classes = [
        OpenApiJsonRenderer,
        OpenApiJsonRenderer2,
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
    ]


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # JSON first (also valid YAML); ?format=yaml for YAML.
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", ApiIndexView.as_view(), name="api-index"),
    path("api/v1/", include("config.api.router")),
    # Unknown routes under /api/ answer in the error shape, DEBUG or not.
    re_path(r"^api/", api_not_found),
]


# Errors that escape DRF (middleware, URL resolution) keep the JSON shape under /api/.
def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return error_response(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return error_response(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return error_response(404, "not_found", f"Nothing is found at {request.path}.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return error_response(500, "error", "Server Error (500)")
    return defaults.server_error(request)
