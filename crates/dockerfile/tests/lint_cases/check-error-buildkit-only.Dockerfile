# check=error=true
FROM alpine:3.20 AS Base
RUN sudo true
USER app
