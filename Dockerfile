# CPU inference image: numpy + Pillow + onnxruntime + the bundled model; no torch.
# Build: docker build -t inkproof .
# Run:   docker run --rm -v "$PWD:/data" inkproof verify /data/reference.png /data/query.png
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY inkproof ./inkproof
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 1000 inkproof
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER inkproof
WORKDIR /home/inkproof
ENTRYPOINT ["inkproof"]
CMD ["--help"]
