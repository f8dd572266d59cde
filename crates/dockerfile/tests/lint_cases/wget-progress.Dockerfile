FROM debian:13
RUN wget https://example.com/a.tgz && wget -q https://example.com/b && wget --progress=dot:giga https://example.com/c
USER app
