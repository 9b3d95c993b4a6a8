"""The project's routes plus two that fail, to test the JSON 500 handlers."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.request import Request

from config import urls as project_urls


@api_view(["GET"])
def boom(request: Request) -> HttpResponse:
    raise RuntimeError("secret internals")


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals")


urlpatterns = [
    path("api/v1/boom/", boom),
    path("api/v1/plain-boom/", plain_boom),
    *project_urls.urlpatterns,
]
handler500 = project_urls.handler500
handler404 = project_urls.handler404
