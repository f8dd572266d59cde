FROM alpine:3.20 AS build
RUN apk add --no-cache --virtual .x curl=8.9.1-r0
FROM scratch
COPY --from=build / /
