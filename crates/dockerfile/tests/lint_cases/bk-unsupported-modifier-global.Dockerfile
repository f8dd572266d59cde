ARG VARIANT=${BASE:bullseye}
FROM alpine:3.20
USER app
