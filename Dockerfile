# The grading image: only the students' kernel environment. The grader, the rubric, the
# checks and the held-out labels stay outside; kernels reach the grader through IPC
# sockets in a folder the grader mounts for each kernel.
#
#   markers (GPU):  autograder image build        (BASE: a CUDA PyTorch image)
#   CI (no pulls):  autograder image build --base autograder-base:bookworm
#                   where the base is a debootstrap folder given to `docker import`
ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE}

# The package index to use when it is not PyPI (the host's pip settings).
ARG PIP_INDEX=
ARG PIP_EXTRA_INDEX=
# tcmalloc, the allocator Colab preloads: the sandbox preloads it in each kernel where the
# image has it (without it a fixed glibc mmap threshold keeps loops of fresh large tensors
# from growing the heap, at some cost in speed). Best effort: a base without apt, or with
# no package index in reach, goes without.
RUN (command -v apt-get >/dev/null && apt-get update -q >/dev/null && \
     DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libtcmalloc-minimal4 >/dev/null && \
     rm -rf /var/lib/apt/lists/*) || echo "no tcmalloc in this image: kernels fix glibc's mmap threshold instead"
COPY docker/ /opt/autograder-build/
# The one list of what kernels import, shared with the local kernel (pyproject.toml).
COPY autograder/requirements/kernel.txt /opt/autograder-build/
RUN set -eu; \
    if [ -s /opt/autograder-build/certs/host-ca.crt ]; then export PIP_CERT=/opt/autograder-build/certs/host-ca.crt; fi; \
    if [ -n "$PIP_INDEX" ]; then export PIP_INDEX_URL="$PIP_INDEX"; fi; \
    if [ -n "$PIP_EXTRA_INDEX" ]; then export PIP_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX"; fi; \
    python3 -m venv --system-site-packages /opt/kernel; \
    /opt/kernel/bin/pip install --no-cache-dir --disable-pip-version-check -r /opt/autograder-build/kernel.txt; \
    modules=$(sed -n 's/.*# import: //p' /opt/autograder-build/kernel.txt | tr -d ' ' | paste -sd, -); \
    /opt/kernel/bin/python -c "import $modules"; \
    rm -rf /opt/autograder-build

ENV PATH=/opt/kernel/bin:$PATH \
    HOME=/work \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=module://matplotlib_inline.backend_inline
LABEL org.autograder.image="grading"
# /work is not made here: each kernel gets a fresh size-limited tmpfs there, writable by
# its user (a folder of the image at that path would lend the tmpfs its root-only mode).
USER 61000:61000
