FROM alpine:3.20
RUN set -eux; cd /app; make
RUN wget -q https://e.com/x.tgz && tar -xzf x.tgz && cd x && make install
USER app
