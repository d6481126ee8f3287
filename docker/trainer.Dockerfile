# syntax=docker/dockerfile:1
# geomas trainer image (CUDA): the train step (QLoRA with bitsandbytes) and docling's layout
# models for PDF ingestion. Referenced as <registry>/geomas/trainer:<tag>.
#
#   docker build -f docker/trainer.Dockerfile -t $REGISTRY/geomas/trainer:$TAG .
#
# The build downloads (PyTorch wheels, docling's layout weights); the image runs offline:
# base LLM weights come from the model-cache PVC mounted at /models (HF_HOME=/models/hf).

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

# ---- build: Python 3.11, CUDA torch + torchvision, geomas[gpu], layout weights --------------
FROM ${CUDA_IMAGE} AS build

ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.13.0
ARG TORCHVISION_VERSION=0.28.0
# The PyTorch wheel index for the CUDA line of the base image.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

COPY --from=uv /uv /usr/local/bin/uv

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Ubuntu 24.04 ships Python 3.12; a relocatable CPython 3.11 goes to /opt/python and is copied
# into the runtime stage with the venv.
RUN uv python install ${PYTHON_VERSION} \
    && uv venv --python ${PYTHON_VERSION} /opt/venv

# torch and torchvision as a matching CUDA pair first; geomas accepts torch>=2.5 and docling's
# torchvision requirement is open, so the install below keeps both.
RUN uv pip install --index-url ${TORCH_INDEX_URL} \
        torch==${TORCH_VERSION} torchvision==${TORCHVISION_VERSION}

WORKDIR /src
COPY pyproject.toml README.md ./
COPY geomas ./geomas
COPY steps ./steps
COPY pipelines ./pipelines
# gpu extra: full docling (layout + table models); k8s extra: the kubernetes client and s3fs;
# bitsandbytes for 4-bit QLoRA (its wheels carry the CUDA kernels).
RUN uv pip install ".[gpu,k8s]" "bitsandbytes>=0.48" \
    && python -c "import torch, torchvision; assert torch.version.cuda, 'CPU torch in the trainer image'"

# Bake docling's layout and table-structure weights in: pods have no hub access.
RUN mkdir -p /opt/docling-models \
    && docling-tools models download layout tableformer -o /opt/docling-models \
    && chmod -R a+rX /opt/docling-models

# ---- runtime: CUDA runtime, Python, venv, weights, configs, a non-root user ----------------
FROM ${CUDA_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001

# libgl1/libglib: OpenCV, which docling's standard extra pulls in (rapidocr).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgl1 libglib2.0-0t64 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid ${GID} geomas \
    && useradd --uid ${UID} --gid ${GID} --create-home --home-dir /home/geomas \
        --shell /usr/sbin/nologin geomas

COPY --from=build /opt/python /opt/python
COPY --from=build /opt/venv /opt/venv
# Read-only for the app user: root-owned, world-readable (chmod a+rX in the build stage).
COPY --from=build --chown=0:0 /opt/docling-models /opt/docling-models

WORKDIR /app
# Root-owned, world-readable: the app reads its configs and cannot change them.
COPY configs /app/configs

# HF_HOME: base weights from the model-cache PVC (/models); offline at run time.
# GEOMAS_LAYOUT_ARTIFACTS_PATH / DOCLING_ARTIFACTS_PATH: the baked layout weights.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/geomas \
    GEOMAS_LAYOUT_ARTIFACTS_PATH=/opt/docling-models \
    DOCLING_ARTIFACTS_PATH=/opt/docling-models \
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
