"""What other apps contribute about a user, without personalization importing them.

Higher apps (experiments, outcomes, recommendations) register here from their
`AppConfig.ready()`:

* **user data**: every model that holds rows about a user, for `me/export/` and for erasure;
* **profile summaries**: a section of the `me/` summary (e.g. recommendation counts).

Dependencies keep pointing one way: personalization only ever calls what was registered.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models


@dataclass(frozen=True)
class UserDataSource:
    """Rows of `model` about a user: those whose `owner_field` is the user."""

    model: type[models.Model]
    owner_field: str = "user"
    # Fields never exported (secrets); they appear masked.
    secret_fields: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def rows(self, user: Any) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(**{self.owner_field: user.pk}).order_by("pk")


@dataclass(frozen=True)
class ProfileSummary:
    name: str
    summarize: Callable[[Any], dict[str, Any]]


_user_data: dict[str, UserDataSource] = {}
_summaries: dict[str, ProfileSummary] = {}


def register_user_data(
    model: type[models.Model],
    *,
    owner_field: str = "user",
    secret_fields: frozenset[str] = frozenset(),
) -> None:
    source = UserDataSource(model=model, owner_field=owner_field, secret_fields=secret_fields)
    _user_data[f"{source.label}:{owner_field}"] = source


def register_profile_summary(name: str, summarize: Callable[[Any], dict[str, Any]]) -> None:
    _summaries[name] = ProfileSummary(name=name, summarize=summarize)


def user_data_sources() -> list[UserDataSource]:
    return sorted(_user_data.values(), key=lambda s: (s.label, s.owner_field))


def profile_summaries() -> list[ProfileSummary]:
    return sorted(_summaries.values(), key=lambda s: s.name)
