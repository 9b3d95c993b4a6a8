"""What other apps contribute about a user, without personalization importing them.

Higher apps (experiments, outcomes, recommendations) register here from their
`AppConfig.ready()`:

* **user data**: every model that holds rows about a user, for `me/export/` and for erasure;
* **profile summaries**: a section of the `me/` summary (e.g. recommendation counts);
* **merges**: how a model's rows move when one learner is merged into another
  (`users/{id}/merge/`);
* **erasure hooks**: what to do before a user's rows are erased (preparers) and after
  (listeners).

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


@dataclass(frozen=True)
class UserMerge:
    """How rows of `model` move from a merged learner to the surviving one. Rows whose
    `keys` (with the owner, and within `condition` when given) the survivor already has
    stay behind and are erased with the merged learner: the survivor's row wins. With
    `one_per_user`, the merged learner's row moves only if the survivor has none. `merge`,
    when given, does the whole move itself: merge(source, target). `stays` declares rows
    that do not move at all (tokens, computed rows, records of what the user did) and are
    erased with the merged learner: every model that refers to users is declared one way
    or the other, so none is forgotten."""

    model: type[models.Model]
    keys: tuple[str, ...] = ()
    condition: Any = None
    one_per_user: bool = False
    merge: Callable[[Any, Any], int] | None = None
    order: int = 50
    stays: bool = False

    @property
    def label(self) -> str:
        return self.model._meta.label_lower


_merges: dict[str, UserMerge] = {}


def register_user_merge(
    model: type[models.Model],
    *,
    keys: tuple[str, ...] = (),
    condition: Any = None,
    one_per_user: bool = False,
    merge: Callable[[Any, Any], int] | None = None,
    order: int = 50,
    stays: bool = False,
) -> None:
    rule = UserMerge(model, keys, condition, one_per_user, merge, order, stays)
    _merges[rule.label] = rule


def user_merges() -> list[UserMerge]:
    return sorted(_merges.values(), key=lambda m: (m.order, m.label))


_erasure_listeners: list[Callable[[int], Any]] = []


def register_erasure_listener(listener: Callable[[int], Any]) -> None:
    """Called with the user's id inside the transaction that erases them (e.g. to send the
    user.erased webhook)."""
    if listener not in _erasure_listeners:
        _erasure_listeners.append(listener)


def erasure_listeners() -> list[Callable[[int], Any]]:
    return list(_erasure_listeners)


_erasure_preparers: list[Callable[[Any], Any]] = []


def register_erasure_preparer(preparer: Callable[[Any], Any]) -> None:
    """Called with the user inside the transaction that erases them, before any of their
    rows is deleted (e.g. to note which computed figures counted those rows)."""
    if preparer not in _erasure_preparers:
        _erasure_preparers.append(preparer)


def erasure_preparers() -> list[Callable[[Any], Any]]:
    return list(_erasure_preparers)
