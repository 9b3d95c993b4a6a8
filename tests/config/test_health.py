import pytest
from django.db import connections
from django.test import override_settings

from config import health


def test_healthz__always__200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz__dependencies_up__200(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database:default": "ok", "broker": "ok"}


def _unreachable_database():
    """A real connection object whose server cannot be reached."""
    connection = connections["default"]
    settings_dict = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        settings_dict.update(HOST="127.0.0.1", PORT="1")
    else:
        settings_dict.update(NAME="/nonexistent-directory/attune.sqlite3")
    return connection.__class__(settings_dict, alias="default")


@pytest.mark.django_db
def test_readyz__database_unreachable__503_names_it(client, monkeypatch):
    broken = _unreachable_database()
    monkeypatch.setattr(health, "database_connections", lambda: [broken])
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database:default"]
    assert "database:default" in body["detail"]
    assert body["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_readyz__broker_unreachable__503_names_it(client):
    with override_settings(
        CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database:default"] == "ok"
