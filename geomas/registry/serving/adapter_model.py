"""Models-from-code entry of a registered adapter (geomas-sft, geomas-cls)."""

import mlflow

from geomas.registry.adapters import PeftAdapterPyfunc

mlflow.models.set_model(PeftAdapterPyfunc())
