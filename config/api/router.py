"""`/api/v1/`: every app's routes in one router, plus authentication."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from config.api.views import ObtainTokenView
from experiments.api.holdouts import HoldoutViewSet, RolloutViewSet
from experiments.api.simulate import ExperimentSimulateView
from experiments.api.views import (
    DecisionViewSet,
    ExperimentViewSet,
    MePromptContextView,
    StrategyConfigViewSet,
    StrategyViewSet,
)
from experiments.api.webhooks import WebhookEndpointViewSet
from logs.api.views import (
    AuditEventViewSet,
    PersonalizationLogViewSet,
    RequestLogStatsView,
    TranslationLogViewSet,
)
from outcomes.api.views import (
    EffectivenessViewSet,
    ExperimentPlanView,
    ExperimentResultsView,
    OfflineEvaluationView,
    OutcomeViewSet,
)
from personalization.api.views import (
    InteractionSummaryView,
    InteractionViewSet,
    MeExportView,
    MePreferencesView,
    MeSkillsView,
    MeView,
    UserViewSet,
)
from recommendations.api.views import (
    ContentItemViewSet,
    LearningPathViewSet,
    RecommendationViewSet,
)

# The hot routes, resolved first: URL resolution tries the patterns in order (the schema and
# the index sort by path, so the order shows nowhere else).
hot_router = DefaultRouter(trailing_slash=True)
hot_router.include_root_view = False
hot_router.register("decisions", DecisionViewSet, basename="decision")
hot_router.register("outcomes", OutcomeViewSet, basename="outcome")

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("logs/personalization", PersonalizationLogViewSet, basename="personalization-log")
router.register("logs/translation", TranslationLogViewSet, basename="translation-log")
router.register("users", UserViewSet, basename="user")
router.register("interactions", InteractionViewSet, basename="interaction")
router.register("strategies", StrategyViewSet, basename="strategy")
router.register("configs", StrategyConfigViewSet, basename="config")
router.register("experiments", ExperimentViewSet, basename="experiment")
router.register("holdouts", HoldoutViewSet, basename="holdout")
router.register("rollouts", RolloutViewSet, basename="rollout")
router.register("effectiveness", EffectivenessViewSet, basename="effectiveness")
router.register("content-items", ContentItemViewSet, basename="content-item")
router.register("recommendations", RecommendationViewSet, basename="recommendation")
router.register("learning-paths", LearningPathViewSet, basename="learning-path")
router.register("audit", AuditEventViewSet, basename="audit-event")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    path("", include(hot_router.urls)),
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("me/", MeView.as_view(), name="me"),
    path("me/export/", MeExportView.as_view(), name="me-export"),
    path("me/preferences/", MePreferencesView.as_view(), name="me-preferences"),
    path("me/skills/", MeSkillsView.as_view(), name="me-skills"),
    path("me/prompt-context/", MePromptContextView.as_view(), name="me-prompt-context"),
    path("interactions/summary/", InteractionSummaryView.as_view(), name="interaction-summary"),
    path(
        "experiments/<int:pk>/results/", ExperimentResultsView.as_view(), name="experiment-results"
    ),
    path("experiments/plan/", ExperimentPlanView.as_view(), name="experiment-plan"),
    path(
        "experiments/<int:pk>/simulate/",
        ExperimentSimulateView.as_view(),
        name="experiment-simulate",
    ),
    path("logs/stats/", RequestLogStatsView.as_view(), name="log-stats"),
    path("effectiveness/offline/", OfflineEvaluationView.as_view(), name="effectiveness-offline"),
    path("", include(router.urls)),
]
