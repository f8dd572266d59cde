FROM myorg/base
FROM myorg/tool:latest AS tool
FROM alpine
USER app
