FROM alpine:3.20
RUN cd /usr/src/app && make && cd / && rm -rf /usr/src/app
RUN cd "$(mktemp -d)" && wget -q https://e.com/x
RUN cd /srv && ./configure
USER app
