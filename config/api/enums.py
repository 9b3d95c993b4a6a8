"""Choice sets named explicitly in the OpenAPI schema (SPECTACULAR_SETTINGS
["ENUM_NAME_OVERRIDES"]), where a field name is shared by different choice sets."""

from personalization.models import Interaction

INTERACTION_TYPE = Interaction.Type.choices
