# syntax=docker/dockerfile:1
# Two images from one file. The default target, `runtime`, runs every process; the command picks
# the role (see k8s/README.md):
#   API        granian --interface asgi --factory api.app:create_app --host 0.0.0.0 --port 8000 ...
#   worker     python -m tasks.runtime.worker --queues <inference|critical|emails|analytics>
#   scheduler  python -m tasks.runtime.worker --scheduler
#   migrations alchemy --config db.config.alchemy upgrade --no-prompt
# `docker build --target api` builds the API alone: no onnxruntime and no ONNX models (the API
# never loads them), so a smaller image and fewer packages to patch; it can also run migrations.
# No HEALTHCHECK: Kubernetes probes /health/live and /health/ready.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: compilers and pip live only here -------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# --- build-api: the API's dependencies (requirements/api.txt: no onnxruntime) ---------------
# Each build stage copies only its lockfile, so code changes do not reinstall the dependencies:
# exact versions, hash-checked (`just lock` makes them from pyproject.toml). The project itself
# runs from /app, not from site-packages.
FROM build AS build-api
COPY requirements/api.txt ./requirements.txt
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && python -m compileall -q /opt/venv/lib

# --- build-all: every process's dependencies (requirements/runtime.txt: the runtime ---------
# dependencies, the inference extra (onnxruntime) and the otel extra (tracing turns on with
# OTEL_EXPORTER_OTLP_ENDPOINT))
FROM build AS build-all
COPY requirements/runtime.txt ./requirements.txt
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && python -m compileall -q /opt/venv/lib

# --- base: what both images share, nothing built ----------------------------------------------
FROM ${PYTHON_IMAGE} AS base

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    DATA_DIR=/tmp/fashionistar \
    MALLOC_ARENA_MAX=2

# A fixed numeric uid/gid so the pod securityContext (runAsUser 10001) matches it.
RUN groupadd --system --gid 10001 fashionistar \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin fashionistar

WORKDIR /app

# --- api: the API alone (docker build --target api) -----------------------------------------
FROM base AS api

COPY --from=build-api /opt/venv /opt/venv
# The packages the API imports (tests/test_dockerfile.py follows its imports); no inference/.
# The code is owned by root and read-only to the app user.
COPY api/ /app/api/
COPY core/ /app/core/
COPY db/ /app/db/
COPY tasks/ /app/tasks/
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8000

CMD ["granian", "--interface", "asgi", "--factory", "api.app:create_app", \
     "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--loop", "uvloop", \
     "--no-ws", "--no-access-log", "--log-level", "warning"]

# --- runtime: every process (the default target) --------------------------------------------
FROM base AS runtime

COPY --from=build-all /opt/venv /opt/venv
# Application packages only (devstack/, training/, benchmarks/, tests/ stay out). inference/
# brings the ONNX models in inference/models/ with their manifests; the code is owned by root
# and read-only to the app user.
COPY api/ /app/api/
COPY core/ /app/core/
COPY db/ /app/db/
COPY tasks/ /app/tasks/
COPY inference/ /app/inference/
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8000

# The API by default; workers, the scheduler and migrations override the command.
CMD ["granian", "--interface", "asgi", "--factory", "api.app:create_app", \
     "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--loop", "uvloop", \
     "--no-ws", "--no-access-log", "--log-level", "warning"]
