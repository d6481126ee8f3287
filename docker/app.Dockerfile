# syntax=docker/dockerfile:1
# geomas app image (CPU): the data pipeline steps, `geomas retrain check` (CronJob geomas-retrain)
# and every step that does not train. Referenced as <registry>/geomas/app:<tag>.
#
#   docker build -f docker/app.Dockerfile -t $REGISTRY/geomas/app:$TAG .
#
# No docling layout models here (the `gpu` extra lives in the trainer image): PDFs go through
# docling's model-free NativePdfPipeline.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtual environment with CPU torch and geomas --------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=100 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv && pip install --upgrade pip setuptools wheel

# CPU torch first: geomas accepts torch>=2.5, so the install below keeps this build and never
# pulls CUDA wheels (several GB) on top of it.
RUN pip install --index-url ${TORCH_INDEX_URL} torch==${TORCH_VERSION}

WORKDIR /src
COPY pyproject.toml README.md ./
COPY geomas ./geomas
COPY steps ./steps
COPY pipelines ./pipelines
# k8s extra: the kubernetes client (ZenML's orchestrator pod) and s3fs (S3 artifact store).
RUN pip install ".[k8s]" \
    && python -c "import torch; assert not torch.version.cuda, torch.version.cuda"

# ---- runtime: the venv, the configs, a non-root user ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001

# What ingest runs besides Python: Tesseract with Russian and English data (OCR of scanned PDF
# pages, ingest.ocr) and LibreOffice Writer (.doc/.rtf to DOCX); without them such files are
# rejected with a reason naming the package.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-rus \
        tesseract-ocr-eng libreoffice-writer-nogui \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid ${GID} geomas \
    && useradd --uid ${UID} --gid ${GID} --create-home --home-dir /home/geomas \
        --shell /usr/sbin/nologin geomas

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Root-owned, world-readable: the app reads its configs and cannot change them.
COPY configs /app/configs

# Base weights and tokenizers come from the model-cache PVC (HF_HOME); nothing is downloaded at
# run time.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/geomas \
    HF_HOME=/models/hf \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    ZENML_ANALYTICS_OPT_IN=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1

USER 10001:10001

ENTRYPOINT ["geomas"]
CMD ["--help"]
