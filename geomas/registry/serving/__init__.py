"""MLflow "models from code" files: what a registered geomas model runs when MLflow serves it.

Each file builds the pyfunc from the installed geomas package and hands it to
`mlflow.models.set_model`; nothing is pickled. geomas's own loaders never run the copy stored
in the registry (`geomas.registry.trust`).
"""
