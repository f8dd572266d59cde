FROM debian:13
RUN make -j $(nproc) && ./configure $(test "$gnuArch" != 'riscv64' && echo '--with-lto') && echo $(date)
RUN apt-get purge -y $(dpkg -l | awk '/^rc/ {print $2}') && V=$(id -u) && chown "$(id -u)" /x
USER app
