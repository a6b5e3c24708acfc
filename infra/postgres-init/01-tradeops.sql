-- Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), in
-- the database POSTGRES_DB (prefect), as POSTGRES_USER. Compose mounts this folder; Kubernetes
-- mounts it from the ConfigMap postgres-init (infra/kustomization.yaml). On a managed PostgreSQL
-- (RDS, Cloud SQL) run the same statements once by hand.

-- The Prefect server's database needs trigram indexes (flow run and log search).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The tradeops ops store (run summaries, backup catalog, audit trail): its own database on the
-- same server, owned by the same user; `tradeops db upgrade` or the first flow creates its tables.
CREATE DATABASE tradeops;
