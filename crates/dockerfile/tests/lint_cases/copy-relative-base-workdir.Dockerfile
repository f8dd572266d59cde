FROM example/app-base:1.0
COPY app.sh bin/
USER app
