FROM debian:13
RUN if apt-get install -s "postgresql-17-jit" > /dev/null 2>&1; then echo yes; fi
RUN apt-get install --dry-run curl
USER app
