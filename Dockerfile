# User-code image: the ml_assets code location served over gRPC (`dagster code-server start`),
# built from the committed uv.lock. Used by the Helm chart's user deployment (deploy/helm) and by
# every run and step Job the K8sRunLauncher / k8s_job_executor creates.

# --- build: resolve the locked environment into /opt/venv --------------------------------------
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY ml_assets ./ml_assets
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: the venv and nothing else, as a non-root user -------------------------------------
FROM python:3.11-slim AS runtime
# GPU steps: LightGBM's wheel carries its own OpenCL ICD loader, which finds the NVIDIA driver
# only through an ICD file naming the library that the NVIDIA container runtime mounts; the
# runtime mounts it (and nvidia-smi) only for the capabilities asked for here.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ML_ASSETS_ENV=prod \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    HOME=/home/dagster \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN useradd --create-home --uid 10001 dagster \
    && mkdir -p /opt/dagster/dagster_home && chown dagster /opt/dagster/dagster_home \
    && mkdir -p /etc/OpenCL/vendors \
    && echo "libnvidia-opencl.so.1" > /etc/OpenCL/vendors/nvidia.icd
COPY --from=build /opt/venv /opt/venv
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
USER dagster
WORKDIR /opt/dagster
# Feast's duckdb offline store reads gs:// through the lake's gcsfs filesystem (deploy/README.md).

EXPOSE 4000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", "--module-name", "ml_assets.definitions", "--location-name", "ml_assets"]
