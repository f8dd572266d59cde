FROM alpine:3.20
ARG PACKAGES=alpine-baselayout,\
alpine-keys,\
busybox
ENV SS_DEP="autoconf build-base curl=8.9.1-r0"
RUN apk --root /rootfs --no-cache add --initdb ${PACKAGES//,/ }
RUN set -ex && apk add --no-cache $SS_DEP
RUN fetchDeps=" wget "; apk add --no-cache --virtual .fetch $fetchDeps; apk del .fetch
RUN runDeps="$( scanelf --needed /usr/local | sort -u )"; apk add --no-cache --virtual .rundeps $runDeps
USER app
