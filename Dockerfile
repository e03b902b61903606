# socialops: one image for every Procfile role (web, worker, discord, release).
FROM python:3.13-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 socialops

# Dependencies first, exactly as locked and hash-checked (a layer that survives code changes),
# then the project itself without resolving anything again.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY agent ./agent
COPY integrations ./integrations
COPY storage ./storage
RUN pip install --no-deps .

USER socialops
ENV PORT=8000 HOST=0.0.0.0 LOG_FORMAT=json SOCIALOPS_DATA_DIR=/home/socialops/.socialops
EXPOSE 8000
# Production sets DATABASE_URL and REDIS_URL; the embedded servers are for local use only.
CMD ["socialops", "serve"]
