FROM alpine:3.20
RUN apk add --no-cache --virtual .build-deps gcc make musl-dev \
 && make -C /src install \
 && apk del --no-network .build-deps
USER app
