# The Flask service image. BASE_IMAGE is any Debian-based image with python3 and venv:
# the official slim image by default; machines without registry access pass the locally
# built flask-k8s/python-base:bookworm (scripts/build-base-image.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY app/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall -y pip
COPY app/flaskapp /app/flaskapp
COPY app/gunicorn.conf.py /app/gunicorn.conf.py
# Byte-compile now: the container's root file system is read-only.
RUN /opt/venv/bin/python -m compileall -q /app /opt/venv/lib

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/flaskapp-metrics \
    PORT=8000
WORKDIR /app
USER 10001:10001
# The API (HTTPS when APP_TLS_CERT_FILE and APP_TLS_KEY_FILE are set), and the metrics that
# gunicorn's master serves (APP_METRICS_PORT).
EXPOSE 8000 9100
STOPSIGNAL SIGTERM
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "flaskapp.wsgi:app"]
