FROM alpine:3.20
RUN sudo true
USER app
