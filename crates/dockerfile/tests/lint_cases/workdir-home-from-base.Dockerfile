FROM jupyter/base-notebook:2024-10-07
WORKDIR "${HOME}"
COPY --chown=${NB_UID}:${NB_GID} notebook.ipynb ./
RUN fix-permissions "${CONDA_DIR}"
