"""The core's console pages; each module's ``routes()`` lists its Starlette routes."""
