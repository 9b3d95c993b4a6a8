"""Python client of Attune, the personalization and experimentation engine: decisions,
outcome batching, prompt context and learners over Attune's REST API (`/api/v1/`)."""

from attune_client.api import __version__
from attune_client.async_client import AsyncAttune, AsyncLearnerClient
from attune_client.client import Attune, LearnerClient
from attune_client.errors import AttuneConnectionError, AttuneError, ErrorItem
from attune_client.outcomes import MAX_BATCH, FlushResult
from attune_client.payloads import (
    Context,
    Decision,
    Learner,
    LearnerFields,
    OutcomeFields,
    OutcomeType,
    PromptContext,
    StrategyRef,
)
from attune_client.retries import RetryEvent, RetryPolicy

__all__ = [
    "MAX_BATCH",
    "AsyncAttune",
    "AsyncLearnerClient",
    "Attune",
    "AttuneConnectionError",
    "AttuneError",
    "Context",
    "Decision",
    "ErrorItem",
    "FlushResult",
    "Learner",
    "LearnerClient",
    "LearnerFields",
    "OutcomeFields",
    "OutcomeType",
    "PromptContext",
    "RetryEvent",
    "RetryPolicy",
    "StrategyRef",
    "__version__",
]
