FROM alpine:3.20
RUN cd /src; make install
RUN set -e; cd /src; make install
RUN cd /src && make; cd /
USER app
