"""The control panel: a web app and REST API over runs, corpus, models and promotion.

Modules: `auth` (users, roles, sessions, CSRF, login rate limit), `store` (run records in a
SQLAlchemy database), `runs` (one child process per run, a queue per pipeline, recovery after a
restart), `project` (overview, corpus, models: read through geomas.trigger and
geomas.registry), `app` (the FastAPI app: pages and /api). Nothing heavy is imported here.
"""
