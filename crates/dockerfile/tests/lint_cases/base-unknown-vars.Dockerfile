ARG BASE=quay.io/example/unknown-base
FROM $BASE
USER ${NB_UID}
WORKDIR "${HOME}"
