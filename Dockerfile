# syntax=docker/dockerfile:1
# --- build stage: wheels for the app and its dependencies --------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime stage: slim, non-root, data on a volume -------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ALVH_DATA_DIR=/data \
    ALVH_HTTP_HOST=0.0.0.0 \
    ALVH_HTTP_PORT=8080 \
    ALVH_RULES_FILE=/app/rules/alvh.yaml
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin alvh \
    && mkdir -p /data /app/rules && chown alvh /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=alvh rules/ /app/rules/
WORKDIR /app
USER 10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["alvh"]
CMD ["run"]
