# The tradeops image, one image for every role: Prefect server (API and background services),
# worker, and the flow-run containers a Kubernetes or ECS worker starts. It carries tradeops at
# /opt/tradeops (deployments made from there set that as the flow runs' working directory), the
# PostgreSQL 15 client tools (pg_dump, pg_restore) and git for the backups, prefect-redis (several
# server processes share events and scheduling through Redis) and prefect-kubernetes (the
# kubernetes worker); prefect-aws (ECS worker, S3) comes with tradeops itself.
# Build from the checkout: docker build -f infra/worker.Dockerfile -t tradeops:latest .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tradeops
COPY . .
# versions compatible with prefect==3.8.8 (pyproject.toml pins it)
RUN pip install --no-cache-dir . "prefect-redis==0.3.0" "prefect-kubernetes==0.8.0"
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false
# not root: the flows write backups and reports with owner-only modes
RUN useradd --create-home --uid 10001 tradeops && mkdir -p /var/lib/tradeops && chown tradeops /var/lib/tradeops
USER 10001
EXPOSE 4200
