# syntax=docker/dockerfile:1
# One image for every process; the command picks the role (see k8s/README.md):
#   API        granian --interface asgi --factory api.app:create_app --host 0.0.0.0 --port 8000 ...
#   worker     python -m tasks.runtime.worker --queues <inference|critical|emails|analytics>
#   scheduler  python -m tasks.runtime.worker --scheduler
#   migrations alchemy --config db.config.alchemy upgrade --no-prompt
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
# Only the lockfile first, so code changes do not reinstall the dependencies: the exact versions
# of requirements/runtime.txt, hash-checked (`just lock` makes it from pyproject.toml: the runtime
# dependencies, the inference extra (onnxruntime) and the otel extra (tracing turns on with
# OTEL_EXPORTER_OTLP_ENDPOINT)). The project itself runs from /app, not from site-packages.
COPY requirements/runtime.txt ./requirements.txt
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && python -m compileall -q /opt/venv/lib

# --- runtime: the virtualenv and the application code, nothing else -------------------------
FROM ${PYTHON_IMAGE} AS runtime

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

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
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
