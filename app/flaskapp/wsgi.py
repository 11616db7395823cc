"""WSGI entry point for gunicorn: ``gunicorn flaskapp.wsgi:app``."""

from flaskapp import create_app

app = create_app()
