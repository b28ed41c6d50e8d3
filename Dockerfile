# Image of the Argus backend as fly.io runs it: gunicorn on port 3000.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARGUS_STATE_DIR=/var/lib/argus

WORKDIR /app

# The service runs as an unprivileged user. Its state directory (delivery
# outbox and lock) is the only place it writes besides /tmp.
# USER names it by number so that the runtime need not look the name up.
RUN groupadd --system --gid 10001 argus \
    && useradd --system --no-log-init --uid 10001 --gid argus \
        --home-dir /app --shell /usr/sbin/nologin argus \
    && mkdir -p /var/lib/argus \
    && chown argus:argus /var/lib/argus

# Runtime dependencies only, in their own layer so that a code change does not
# reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY app.py gunicorn.conf.py ui_mappings.json ./
COPY argus ./argus

USER 10001:10001

# gunicorn.conf.py binds to ARGUS_BIND, 0.0.0.0:3000 by default.
EXPOSE 3000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:app"]
