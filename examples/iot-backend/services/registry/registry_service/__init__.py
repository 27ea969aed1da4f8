"""Device registry: the operators' HTTP API to register, list, inspect and decommission devices."""
