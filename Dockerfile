# The otel-redis service (and the demo app of docker-compose.yml) as an image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY otel_redis ./otel_redis
COPY query_api ./query_api
COPY collector ./collector
COPY examples ./examples
RUN pip install --no-cache-dir .
ENV OTEL_REDIS_DATA_DIR=/data PYTHONUNBUFFERED=1
EXPOSE 8080 4318 4317
CMD ["otel-redis", "serve", "--host", "0.0.0.0"]
