FROM alpine:3.20
RUN cd /opt/app && make && cd /
RUN cd /usr/src/php && make install
RUN cd /app && make
USER app
