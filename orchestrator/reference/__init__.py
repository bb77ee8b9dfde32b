"""Reference pages generated from the models: `config_reference()` renders
docs/reference/config.md, `tasks_reference()` docs/reference/tasks.md. Pure: models in,
markdown out (`orchestrator config reference [config|tasks]` prints one)."""

from orchestrator.reference.config import config_reference as config_reference
from orchestrator.reference.tasks import tasks_reference as tasks_reference
