import pytest
from django.conf import settings

from recommendations.models import ContentItem
from recommendations.services.catalog import content_catalog_load


@pytest.fixture
def content_catalog(db) -> list[ContentItem]:
    content_catalog_load(path=settings.BASE_DIR / "fixtures" / "content.json")
    return list(ContentItem.objects.all())
