ARG BASE=quay.io/jupyter/docker-stacks-foundation
FROM $BASE
USER ${NB_UID}
WORKDIR "${HOME}"
