FROM alpine:3.20
RUN apk add --no-cache --virtual .build-deps gcc=13.2.1_git20240309-r0 \
 && scanelf --needed --nobanner /usr/local/bin/x | xargs -rt apk add --no-network --virtual .rundeps \
 && apk del --no-network .build-deps
USER app
