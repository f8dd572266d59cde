FROM python:3.11-slim AS base
WORKDIR /usr/local/app
RUN pip install --no-cache-dir flask==3.0.3
FROM base AS dev
RUN pip install watchdog==6.0.0
FROM python:3.11-slim AS wheels
RUN pip install wheel==0.44.0 && pip wheel -w /wheels flask==3.0.3
FROM ubuntu:24.04 AS build
RUN apt-get update && apt-get install -y --no-install-recommends maven=3.8.7-2
FROM base AS final
COPY --from=wheels /wheels /wheels
USER app
