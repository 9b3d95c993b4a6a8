"""Choice sets named explicitly in the OpenAPI schema (SPECTACULAR_SETTINGS
["ENUM_NAME_OVERRIDES"]), where a field name is shared by different choice sets."""

from experiments.models import Experiment
from logs.models import RequestLog
from personalization.models import Interaction

INTERACTION_TYPE = Interaction.Type.choices
REQUEST_LOG_STATUS = RequestLog.Status.choices
EXPERIMENT_STATUS = Experiment.Status.choices
