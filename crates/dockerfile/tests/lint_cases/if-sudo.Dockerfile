FROM alpine:3.20
RUN if true; then sudo make -C /src install; fi
USER app
