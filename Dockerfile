# One image for the API and the dashboard (system_design.md, "What runs where"): the runtime lock
# (requirements-runtime.txt: every package pinned with its hashes, no test tools), this package,
# the bundled appraisals, a non-root user. The command picks the process:
#   API        python -m app.server --host 0.0.0.0 --port 8000 --workers 2   (the default)
#   dashboard  streamlit run streamlit_app.py --server.address 0.0.0.0 --server.port 8501
#   set-up     python -m diamond_model init      (schema upgrade; bundled data and a first model
#                                                  when the database is empty)
#   retrain    python -m diamond_model retrain   (nightly; records 'skipped' when nothing changed)
# Built with `docker build -t diamond-price .`; not built on the project's own machines, which
# reach no image registry (the base image cannot be pulled there).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIAMOND_INSTANCE_DIR=/var/lib/diamond \
    PYTHONPATH=/srv/diamond

WORKDIR /srv/diamond
COPY requirements-runtime.txt ./
RUN python -m pip install --require-hashes --no-deps -r requirements-runtime.txt

# The code runs from this folder (PYTHONPATH), as in the repository: /changelog serves the
# CHANGELOG.md beside it, and nothing is installed that the lock did not pin.
COPY pyproject.toml README.md CHANGELOG.md streamlit_app.py ./
COPY .streamlit ./.streamlit
COPY datasets ./datasets
COPY diamond_model ./diamond_model
COPY app ./app
COPY pages ./pages
RUN useradd --system --uid 10001 --home-dir /var/lib/diamond --create-home diamond

USER diamond
EXPOSE 8000 8501
# The container's health is the API's liveness (never the database: a database outage must not
# restart tasks that still quote from memory). The dashboard service overrides it in compose.yaml.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
CMD ["python", "-m", "app.server", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
