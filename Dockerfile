# CPU image for inference and the service: numpy + Pillow + onnxruntime + FastAPI + the bundled
# model; no torch.
# Build: docker build -t inkproof .
# Verify: docker run --rm -v "$PWD:/data" inkproof verify /data/reference.png /data/query.png
# Serve:  docker run --rm -p 8000:8000 inkproof serve --host 0.0.0.0 --demo
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY inkproof ./inkproof
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve,document]"

FROM python:3.11-slim
RUN useradd --create-home --uid 1000 inkproof
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "inkproof[serve,document]" && rm -rf /wheels
USER inkproof
WORKDIR /home/inkproof
EXPOSE 8000
ENTRYPOINT ["inkproof"]
CMD ["--help"]
