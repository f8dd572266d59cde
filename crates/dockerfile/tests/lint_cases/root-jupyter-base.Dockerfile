ARG BASE_IMAGE=quay.io/jupyter/base-notebook
FROM $BASE_IMAGE
RUN fix-permissions "${CONDA_DIR}"
COPY --chown=${NB_UID}:${NB_GID} requirements.txt /tmp/
