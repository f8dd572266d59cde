FROM debian:13
RUN { echo "[www]"; echo "listen = 9000"; } | tee /etc/app.conf
RUN { echo a; cat /missing; } | tee /x
USER app
