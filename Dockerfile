# One image for every SmartTrip process (scoring worker, join and learner workers).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY features features
COPY scoring scoring
COPY bandit bandit
COPY stream stream
COPY monitoring monitoring
COPY smarttrip smarttrip
COPY bench bench
COPY sim sim
RUN pip install --no-cache-dir . && useradd --create-home smarttrip
USER smarttrip
ENTRYPOINT ["smarttrip"]
