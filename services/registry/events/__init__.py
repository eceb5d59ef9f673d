"""Registry events: built from domain records, written to the outbox by the store's transaction."""
