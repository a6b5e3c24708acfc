# The worker image: tradeops and the PostgreSQL 15 client tools (pg_dump, pg_restore).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tradeops
COPY . .
RUN pip install --no-cache-dir .
