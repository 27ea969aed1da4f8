"""Ingestion: MQTT v5 shared subscription → validated, batched, idempotent writes to PostgreSQL."""
