import factory
import pytest
from django.contrib.auth.models import Permission

from personalization.models import Interaction, User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"learner{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    display_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class ServiceAccountFactory(UserFactory):
    username = factory.Sequence(lambda n: f"service{n}")

    @factory.post_generation
    def act_for_users(obj, create, extracted, **kwargs):
        if create:
            obj.user_permissions.add(
                Permission.objects.get(
                    codename="act_for_users", content_type__app_label="personalization"
                )
            )


@pytest.fixture
def user(db) -> User:
    return UserFactory(external_id="ext-learner")


@pytest.fixture
def other_user(db) -> User:
    return UserFactory()


@pytest.fixture
def staff_user(db) -> User:
    return StaffFactory()


@pytest.fixture
def service_account(db) -> User:
    return ServiceAccountFactory()


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    user = factory.SubFactory(UserFactory)
    type = Interaction.Type.READING
    service = "library"
    theme = "space"
    rating = 4
