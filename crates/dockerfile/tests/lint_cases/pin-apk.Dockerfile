FROM alpine:3.20
RUN apk add --no-cache --virtual .deps curl=8.9.1-r0 jq
USER app
