# User-code image: the ml_assets code location served over gRPC (dagster code-server), built
# from the committed uv.lock. Used by the Helm chart's user deployment and by k8s step Jobs.
FROM python:3.11-slim AS base

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    ML_ASSETS_ENV=prod

RUN pip install --no-cache-dir uv
WORKDIR /opt/ml_assets

# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY ml_assets ./ml_assets
COPY workspace.yaml dagster.yaml ./
RUN uv sync --frozen --no-dev

RUN useradd --create-home --uid 10001 dagster
USER dagster

EXPOSE 4000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", "--module-name", "ml_assets.definitions", "--location-name", "ml_assets"]
