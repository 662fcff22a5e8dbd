# The worker image Fargate runs for executor="ecs" tasks. Build from the repo root:
#   docker build -f infra/worker.Dockerfile -t slipstream-worker .
# A DAG that needs more libraries uses an image built FROM this one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/slipstream

# Dependencies first: they change less often than the code, so the layer is reused.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY chalicelib/ ./chalicelib/
COPY operators/ ./operators/

RUN useradd --system --uid 10001 --home-dir /tmp slipstream
USER slipstream

# The try arrives in SLIPSTREAM_WORKER_MESSAGE (set by EcsExecutor per task).
# The task definition repeats this entry point, so images built FROM this one keep it.
ENTRYPOINT ["python", "-m", "chalicelib.runtime.worker_cli"]
