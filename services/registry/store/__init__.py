"""Registry SQL: every query of the registry database lives here."""
