"""Platform mechanisms shared by every service: settings, database, outbox relay, consumer loop, auth,
errors, metrics, logging. No domain logic lives here."""
