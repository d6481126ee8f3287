# syntax=docker/dockerfile:1
# MLflow tracking server for the Helm chart (Deployment geomas-mlflow): MLflow with the
# PostgreSQL/MySQL drivers for the backend store and boto3 for the S3 artifact proxy, which
# the upstream MLflow image lacks. Referenced as <registry>/geomas/mlflow:<tag>.
#
#   docker build -f docker/mlflow.Dockerfile -t $REGISTRY/geomas/mlflow:$TAG docker
#
# Keep MLFLOW_VERSION within the range geomas's clients use (pyproject: mlflow>=3.13,<4).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ARG MLFLOW_VERSION=3.17.2

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv \
    && pip install --upgrade pip \
    && pip install "mlflow[auth]==${MLFLOW_VERSION}" psycopg2-binary pymysql boto3

FROM ${PYTHON_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001

RUN groupadd --gid ${GID} mlflow \
    && useradd --uid ${UID} --gid ${GID} --create-home --home-dir /home/mlflow \
        --shell /usr/sbin/nologin mlflow

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mlflow \
    MLFLOW_DISABLE_TELEMETRY=true

WORKDIR /home/mlflow
USER 10001:10001
EXPOSE 5000

ENTRYPOINT ["mlflow"]
CMD ["server", "--host", "0.0.0.0", "--port", "5000"]
