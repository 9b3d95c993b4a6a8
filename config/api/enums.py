"""Choice sets named explicitly in the OpenAPI schema (SPECTACULAR_SETTINGS
["ENUM_NAME_OVERRIDES"]), where a field name is shared by different choice sets."""

from experiments.models import Context, Experiment
from experiments.params import CONTENT_TYPES
from logs.models import RequestLog
from personalization.models import Interaction
from recommendations.models import ContentItem

INTERACTION_TYPE = Interaction.Type.choices
REQUEST_LOG_STATUS = RequestLog.Status.choices
EXPERIMENT_STATUS = Experiment.Status.choices
CONTEXT = Context.choices
CONTENT_ITEM_TYPE = ContentItem.Type.choices
OUTCOME_CONTENT_TYPE = [(value, value) for value in CONTENT_TYPES]
