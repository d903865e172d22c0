# One image for the web process and the workers: a Celery worker must run the same code.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY compute ./compute
COPY dashboard ./dashboard
COPY assets ./assets
COPY app.py ./
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --create-home repscope && mkdir -p /data/cache && chown -R repscope /data
USER repscope
ENV REPSCOPE_CACHE_DIR=/data/cache
EXPOSE 8050
