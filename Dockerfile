# Freshguard's HTTP service (`freshguard serve`), for docker-compose.yml or any container platform.
#
#   docker build -t freshguard .
#   docker run -e FRESHGUARD_API_KEYS=... -e STRIPE_SIGNING_KEY=... -p 127.0.0.1:8000:8000 freshguard
#
# Two stages: the first builds the wheel and installs it with its dependencies into a virtualenv
# (no dev extras); the second copies only that virtualenv, without the source tree or build files.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel is built from: pyproject.toml names README.md as its long description, and the wheel
# carries the example policy for `freshguard demo`.
COPY pyproject.toml README.md ./
COPY guard ./guard
COPY api ./api
COPY policies/support-assistant.yaml ./policies/
RUN python -m venv /opt/freshguard \
 && /opt/freshguard/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/freshguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The defaults the start command reads; docker-compose.yml (or `docker run -e`) overrides them.
# The policy is the shipped example: mount your own over it, read-only, or point this elsewhere.
# The store is the embedded SQLite file, in the one directory the service may write; a team uses PostgreSQL.
ENV FRESHGUARD_POLICY=/etc/freshguard/policy.yaml \
    FRESHGUARD_DATABASE_URL=sqlite:////var/lib/freshguard/freshguard.db
RUN groupadd --system --gid 10001 freshguard \
 && useradd --system --uid 10001 --gid freshguard --home-dir /var/lib/freshguard --shell /usr/sbin/nologin freshguard \
 && install -d -o freshguard -g freshguard -m 0750 /var/lib/freshguard
COPY --from=build /opt/freshguard /opt/freshguard
COPY policies/support-assistant.yaml /etc/freshguard/policy.yaml
USER freshguard:freshguard
WORKDIR /var/lib/freshguard
EXPOSE 8000
# Ready means the policy is loaded and the lineage store answers a query (GET /readyz answers 200).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
# Opening the lineage store applies its Alembic migrations, so this is the whole start-up.
# Listening beyond loopback needs API keys (FRESHGUARD_API_KEYS or FRESHGUARD_KEYS_FILE): without them
# `serve` refuses to start. `exec` makes the service PID 1, so it gets the container's SIGTERM.
CMD ["/bin/sh", "-c", "exec freshguard serve --policy \"$FRESHGUARD_POLICY\" --database \"$FRESHGUARD_DATABASE_URL\" --host 0.0.0.0 --port 8000"]
