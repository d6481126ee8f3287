"""Models-from-code entry of a registered NER model (geomas-ner)."""

import mlflow

from geomas.registry.mlflow_models import NerPyfunc

mlflow.models.set_model(NerPyfunc())
