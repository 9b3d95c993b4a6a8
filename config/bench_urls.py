"""URLs under the benchmark settings only: the project's, plus the baseline the decide call
is measured against — a bare Django view that runs one SQL query."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config import urls as project_urls


@csrf_exempt
def one_query(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM experiments_strategy WHERE id = %s", [1])
        row = cursor.fetchone()
    return HttpResponse(f'{{"id": {row[0] if row else "null"}}}', content_type="application/json")


urlpatterns = [path("bench/one-query/", one_query), *project_urls.urlpatterns]
handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
