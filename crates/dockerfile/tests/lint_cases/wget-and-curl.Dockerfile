FROM debian:13
RUN wget -nv https://example.com/a
RUN curl -fsSL -o b https://example.com/b
USER app
