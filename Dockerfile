# syntax=docker/dockerfile:1.7
# prectr serving image: the default dependencies only (onnxruntime, no torch), a non-root user, /healthz probe.
#
#   docker build -t prectr:cpu .                                   # CPU (python:3.11-slim)
#   docker build -t prectr:gpu --build-arg VARIANT=gpu .           # onnxruntime-gpu on the CUDA runtime image
#   docker build -t prectr:loadtest --target loadtest .            # locust + report, for the compose profile
#
# Run with a bundle mounted at /bundles/current (PRECTR_BUNDLE__PATH) and PRECTR_REDIS__URL for Redis.

ARG PYTHON_VERSION=3.11
ARG VARIANT=cpu
# CUDA 12 + cuDNN 9: what onnxruntime-gpu >= 1.19 is built against on PyPI.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# --- sources, once: every later stage copies from here --------------------------------------------------------
FROM scratch AS source
COPY pyproject.toml README.md /src/
COPY features /src/features
COPY preference_cache /src/preference_cache
COPY service /src/service
COPY cli /src/cli
COPY data /src/data
COPY model /src/model
COPY export /src/export
COPY loadtest /src/loadtest

# --- interpreters ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS base-cpu

FROM ${CUDA_IMAGE} AS base-gpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python

# --- build the virtual environment ----------------------------------------------------------------------------
FROM base-${VARIANT} AS build
ARG VARIANT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY --from=source /src /src
# Default dependencies only: the [train] extra (torch, transformers) never enters a serving image.
RUN pip install /src \
 && if [ "$VARIANT" = "gpu" ]; then pip uninstall -y onnxruntime && pip install "onnxruntime-gpu>=1.19"; fi \
 && if python -c "import torch" 2>/dev/null; then echo "torch must not be in the serving image" >&2; exit 1; fi \
 && python -c "import service.app, onnxruntime; print('providers:', onnxruntime.get_available_providers())"

# --- load generator (docker compose --profile loadtest) -------------------------------------------------------
FROM base-cpu AS loadtest
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN python -m venv /opt/venv
COPY --from=source /src /src
RUN pip install "/src[loadtest]" \
 && groupadd --system --gid 10001 prectr \
 && useradd --system --uid 10001 --gid prectr --no-create-home --shell /usr/sbin/nologin prectr
USER prectr:prectr
WORKDIR /src
ENTRYPOINT ["locust", "-f", "loadtest/locustfile.py"]

# --- serving image (the last stage, so the default target) -----------------------------------------------
FROM base-${VARIANT} AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="prectr" \
      org.opencontainers.image.description="PRECTR-V2 relevance x CTR scoring service (${VARIANT})"
RUN groupadd --system --gid 10001 prectr \
 && useradd --system --uid 10001 --gid prectr --no-create-home --shell /usr/sbin/nologin prectr
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRECTR_SERVER__HOST=0.0.0.0 \
    PRECTR_SERVER__PORT=8000 \
    PRECTR_BUNDLE__PATH=/bundles/current
USER prectr:prectr
WORKDIR /home/prectr
EXPOSE 8000
# Liveness only: readiness (/readyz) is for the load balancer, a restart would not fix a missing bundle.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PRECTR_SERVER__PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
# service.cli, not the `prectr` entry point: serving imports nothing from the offline packages.
CMD ["python", "-m", "service.cli"]
