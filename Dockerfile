# The harness in a container: `harness run`, `harness sim`, and plain Locust master/worker.
#   docker build -t realtime-voice-harness .
#   docker run --rm -v "$PWD/reports:/work/reports" realtime-voice-harness run -u 10 -t 30s
#   docker run --rm realtime-voice-harness locust -f /opt/harness/locustfile.py --worker --master-host MASTER ...
# The wheel carries the shipped corpora (`--corpus default` works from any directory); the root
# locustfile is copied to /opt/harness for plain Locust. See docs/deploy.md.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md locustfile.py ./
COPY harness ./harness
COPY corpora ./corpora
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY locustfile.py /opt/harness/locustfile.py
RUN useradd --create-home --uid 10001 harness && mkdir -p /work/reports && chown -R harness /work
USER harness
WORKDIR /work
# 8765: harness sim; 5557: the Locust master's worker port; 8089: Locust's web UI
EXPOSE 8765 5557 8089
ENTRYPOINT ["harness"]
CMD ["--help"]
