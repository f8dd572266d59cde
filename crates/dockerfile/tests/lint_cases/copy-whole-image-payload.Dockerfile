FROM python:3.12-slim AS build
RUN pip install --no-cache-dir --prefix=/out flask==3.0.0
FROM python:3.12-slim
COPY --from=gloursdocker/docker / /
COPY --from=build /out /usr/local
USER app
