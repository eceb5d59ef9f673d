"""Registry HTTP routers: parse, authorise, call the use cases in `registry.service`."""
