"""Web layer: lifespan, sessions, dependencies and routers."""
