import pytest
from openapi_spec_validator import validate

from tests.conftest import token_client


@pytest.mark.django_db
def test_schema__valid_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate(schema)
    assert "/api/v1/auth/token/" in schema["paths"]
    assert "/api/v1/logs/stats/" in schema["paths"]


@pytest.mark.django_db
def test_schema__documents_error_shape(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"]["/api/v1/logs/personalization/"]["post"]
    assert {"400", "401", "405", "415", "429"} <= set(post["responses"])
    stats = schema["paths"]["/api/v1/logs/stats/"]["get"]
    assert {"401", "403"} <= set(stats["responses"])
    assert "X-On-Behalf-Of" in [p["name"] for p in post["parameters"]]
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert "X-On-Behalf-Of" not in [p["name"] for p in token.get("parameters", [])]


@pytest.mark.django_db
def test_docs__page_served_without_cdn(client, user):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html
    assert token_client(user).get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_schema__generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert (tmp_path / "s.yml").stat().st_size > 1000


@pytest.mark.django_db
def test_schema__on_behalf_of_errors_and_one_or_many_bodies(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    preferences = schema["paths"]["/api/v1/me/preferences/"]["get"]["responses"]
    assert "X-On-Behalf-Of" in preferences["403"]["description"]
    assert "X-On-Behalf-Of" in preferences["404"]["description"]
    for path, limit in (("/api/v1/outcomes/", 1000), ("/api/v1/interactions/", 500)):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        one, many = body["schema"]["oneOf"]
        assert many == {"type": "array", "items": one, "maxItems": limit}
