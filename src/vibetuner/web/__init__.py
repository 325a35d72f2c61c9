"""The core web layer: lifespan, middleware, pages, errors and the helpers routes use."""
